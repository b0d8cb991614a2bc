
TEST-TR-XI-ISS-2025-0005TEST-TR-XI-ISS-2025-0005-1verified (B)
GT-PGNcw-ftr-guatemala-03
GT-PGN-FTRJcMother and child recognised each other by video call with caseworkers present. FICTIONAL TEST DATA.