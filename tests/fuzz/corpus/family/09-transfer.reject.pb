	
TEST-TRF-US-ORR-2025-0108not_competent")
HN-DINAFcw-dinaf-sps-04HN-DINAF-SPS