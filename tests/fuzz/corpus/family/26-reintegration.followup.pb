
TEST-RET-MX-DIF-2025-0019after_reunificationé 0Bkinship_care_extended_familyJ	educationJpsychosocialPZéb'
GT-PGNcw-reint-xela-05GT-PGN-XELA