
TEST-REF-MX-DIF-2025-0001accepted)
GT-PGNcw-guatemala-12GT-PGN-CENTRAL"<Case assigned to the psychosocial team. FICTIONAL TEST DATA.