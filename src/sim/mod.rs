//! A local Okta System Log simulator for tests, the demo and benchmarks.
