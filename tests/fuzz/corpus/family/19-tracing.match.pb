
TEST-TR-XI-ISS-2025-0005TEST-TR-XI-ISS-2025-0005-1TEST-CAND-7f3a9c!×£p=
×ë?*likely2

name_first2
	name_last2
sex2
age2
date_of_birth2
location_last