
TEST-REF-MX-DIF-2025-0001done)
GT-PGNcw-guatemala-12GT-PGN-CENTRAL"Both services delivered.*é