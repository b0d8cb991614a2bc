
TEST-TRF-US-ORR-2025-0107(
US-ORRcw-orr-case-31US-ORR-HOUSTONS
KevinFicticio Muestra0:Ü@RHNZesb#
otherTEST-A-000-000-001US-ORR""migrant	separated*returnee**authorities2Ré22
TEST-ORR-RELEASE-2025-0107orr_releaseé:IChild repatriated; case management continues with the national authority.BFICTIONAL TEST DATA