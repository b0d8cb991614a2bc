
TEST-REF-MX-DIF-2025-0002no_capacity`No legal aid capacity in the department this month; please refer to XI-ISS. FICTIONAL TEST DATA.")
GT-PGNcw-guatemala-12GT-PGN-CENTRAL