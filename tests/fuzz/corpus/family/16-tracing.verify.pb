
TEST-TR-XI-ISS-2025-0005TEST-TR-XI-ISS-2025-0005-1pending_verificationB)
GT-PGNcw-ftr-guatemala-03
GT-PGN-FTRJ7Possible match found; verification interview requested.