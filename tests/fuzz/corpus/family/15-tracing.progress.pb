
TEST-TR-XI-ISS-2025-0005TEST-TR-XI-ISS-2025-0005-1tracing_in_progressB)
GT-PGNcw-ftr-guatemala-03
GT-PGN-FTRJ@Shelter records in Tapachula being checked. FICTIONAL TEST DATA.