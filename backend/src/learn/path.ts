/** The states around a chain's operations in transitions and the chain model. */
export const START = '(start)';
export const END = '(end)';
