/*  cu_main — the one way a test binary (tests/unit, tests/integration) runs its
    CUnit registry and turns the result into its exit status.

    CU_basic_run_tests() returns 0 even when tests fail, and
    CU_get_number_of_failures() counts failed assertions only: a suite whose
    setup (init) or cleanup function failed adds no failed assertion, so a
    binary that looked only at it passed with none of its tests run. This
    helper fails the binary when anything went wrong:
      - registering a suite or test failed (CU_get_error() before the run);
      - the run itself reported an error;
      - any assertion failed, any test failed, any suite failed its setup or
        cleanup (CU_get_number_of_suites_failed, failure records of kind
        CUF_SuiteInitFailed / CUF_SuiteCleanupFailed), or a suite or test was
        inactive (fail-on-inactive is set);
      - no test ran at all.
    Usage, at the end of main after the suites are added:
        return pt_cu_main();
    It cleans the registry up. Header-only, so unit tests (which do not link
    tests/lib) can use it too.
*/
#ifndef PT_CU_MAIN_H
#define PT_CU_MAIN_H

#include <CUnit/Basic.h>
#include <stdio.h>

/* Runs every registered suite verbosely, prints why the binary fails if it
   does, cleans the registry up. 0 = every test ran and passed; 1 otherwise. */
static inline int pt_cu_main(void)
{
    if (CU_get_error() != CUE_SUCCESS) {
        fprintf(stderr, "cu_main: registering the tests failed: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 1;
    }
    CU_set_fail_on_inactive(CU_TRUE);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_ErrorCode run = CU_basic_run_tests();
    unsigned asserts_failed = CU_get_number_of_failures();
    unsigned tests_failed = CU_get_number_of_tests_failed();
    unsigned suites_failed = CU_get_number_of_suites_failed();
    unsigned records = CU_get_number_of_failure_records();
    unsigned tests_run = CU_get_number_of_tests_run();
    unsigned setup_failed = 0;
    for (CU_pFailureRecord f = CU_get_failure_list(); f; f = f->pNext)
        if (f->type == CUF_SuiteInitFailed || f->type == CUF_SuiteCleanupFailed)
            setup_failed++;
    int failed = run != CUE_SUCCESS || asserts_failed || tests_failed || suites_failed || records ||
                 setup_failed || tests_run == 0;
    if (failed)
        fprintf(stderr,
                "cu_main: FAILED (run error %d, %u assertions failed, %u tests failed, "
                "%u suites failed, %u suite setup/cleanup failures, %u failure records, "
                "%u tests run)\n",
                (int)run, asserts_failed, tests_failed, suites_failed, setup_failed, records,
                tests_run);
    CU_cleanup_registry();
    return failed ? 1 : 0;
}

#endif
