
TEST-RET-MX-DIF-2025-0019 
vulnerabilitymediumé'
familysupportive_caregiveré<
rss,TEST reintegration sustainability score 0.62é'
GT-PGNcw-reint-xela-05GT-PGN-XELA