
TEST-REF-MX-DIF-2025-0001in_progress)
GT-PGNcw-guatemala-12GT-PGN-CENTRAL"8First psychosocial session held; legal intake scheduled.