//! Deterministic synthetic health files (seeded) with their true statistics computed by the
//! generator itself, independently of the parser. Used by tests, benchmarks and load tests.
