"""GPO: gradient-inspired prompt optimization (arXiv 2402.17564)."""
