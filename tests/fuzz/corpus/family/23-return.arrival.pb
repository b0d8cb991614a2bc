
TEST-RET-MX-DIF-2025-0019éaunt"'
GT-PGNcw-reint-xela-05GT-PGN-XELA