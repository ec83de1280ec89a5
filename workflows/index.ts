// Every workflow the worker registers. Deterministic code only: no I/O, no DuckDB, no fs.
export * from './generator';
export * from './bronze';
export * from './pipeline';
export * from './layers';
export * from './maintenance';
export * from './throttle';
export * from './reshard';
