// Every activity the worker registers, one module per layer.
export * from './landing';
