
TEST-TR-XI-ISS-2025-0005TEST-TR-XI-ISS-2025-0005-1	reunified (2TEST-BID-GT-2025-0077B)
GT-PGNcw-ftr-guatemala-03
GT-PGN-FTRJ5Child reunified with his mother. FICTIONAL TEST DATA.