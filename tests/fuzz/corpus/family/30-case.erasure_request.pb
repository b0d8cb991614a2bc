
TEST-MX-DIF-000123allTEST-LGPDPPSO-ART-46"é*subject_request2+
MX-DIFcw-tapachula-07MX-DIF-TAPACHULA