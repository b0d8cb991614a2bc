
TEST-RET-MX-DIF-2025-0019TEST-PLAN-GT-2025-0019 *Re-enrol in secondary school*Psychosocial recovery*Family livelihood support2\
A1social	education"TEST Instituto BÃ¡sico Xela*cw-reint-xela-052é:in_progress2L
A2psychosocialpsychosocial"GT-PGN*cw-reint-xela-052é	:planned2C
A3economiclivelihoods"XI-IOM*cw-iom-gt-012é
:planned:éB'
GT-PGNcw-reint-xela-05GT-PGN-XELA