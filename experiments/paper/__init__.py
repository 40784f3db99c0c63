"""The paper's evaluations on offline data: the shared setup and metric suites, late-start curves (Fig. 2), the
GLS table (Table 1) and diversity (Fig. 4)."""
