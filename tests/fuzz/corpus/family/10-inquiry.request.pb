

TEST-INQ-US-ORR-2025-0031(
US-ORRcw-orr-case-31US-ORR-HOUSTON-
MarisolEjemplar Demo0:Û@HRSVZes"2Ré*
home_study2CIs the maternal grandmother willing and able to care for the child?29Are there protection risks in the household or community?27Which schools and health services are available nearby?:SV-CONNA-SAN-MIGUELBé