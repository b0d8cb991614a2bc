
TEST-MX-DIF-000123
disclosuretracingé"subject_request*+
MX-DIFcw-tapachula-07MX-DIF-TAPACHULA