
TEST-TRQ-HN-DINAF-2025-0009)
HN-DINAFcw-dinaf-sps-04HN-DINAF-SPSdThe child now lives in San Pedro Sula with his grandmother; DINAF is competent. FICTIONAL TEST DATA.