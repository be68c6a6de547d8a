/** Thrown by `commitAnalysis` when the partition's epoch moved: another instance owns it now. */
export class FencedError extends Error {
  constructor(
    readonly partition: number,
    readonly epoch: number,
  ) {
    super(`partition ${partition}: lease epoch ${epoch} no longer holds (another instance took the partition)`);
    this.name = 'FencedError';
  }
}
