
TEST-RET-MX-DIF-2025-0019otherê"'
GT-PGNcw-reint-xela-05GT-PGN-XELA*0Reopened: school dropout reported by the family.