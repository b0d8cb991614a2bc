
TEST-REF-MX-DIF-2025-0001revoked+
MX-DIFcw-tapachula-07MX-DIF-TAPACHULA"PChild moved to another state; referral withdrawn by sender. FICTIONAL TEST DATA.