
TEST-TR-XI-ISS-2025-0005TEST-TR-XI-ISS-2025-0005-1reunification_planned (2TEST-BID-GT-2025-0077B)
GT-PGNcw-ftr-guatemala-03
GT-PGN-FTRJ;Escorted return to Quetzaltenango planned; home visit done.