
TEST-INQ-US-ORR-2025-0031done(
US-ORRcw-orr-case-31US-ORR-HOUSTON"-Report received and reviewed; inquiry closed.