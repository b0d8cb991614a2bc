
TEST-RET-MX-DIF-2025-0019reintegratedê"'
GT-PGNcw-reint-xela-05GT-PGN-XELA*HPlan objectives met; closed after three follow-ups. FICTIONAL TEST DATA.