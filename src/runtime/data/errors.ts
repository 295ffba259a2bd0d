// Problems with training data. The message names the file, says what is wrong and how to fix it,
// so the CLI can print it as is.

export class DataError extends Error {
  /**
   * @param file the file or folder at fault, as the user named it
   * @param skippable whether `skipBad` may drop the item and go on (a missing tool or an empty
   *   folder is never skippable: skipping would drop everything)
   */
  constructor(readonly file: string, readonly problem: string, readonly fix: string, readonly skippable = true) {
    super(`${file}: ${problem}; ${fix}`);
    this.name = 'DataError';
  }
}

/** A program the data needs (ffmpeg) is not installed. */
export class MissingToolError extends DataError {
  constructor(file: string, readonly tool: string, fix: string) {
    super(file, `decoding this file needs the \`${tool}\` executable, which is not on PATH`, fix, false);
    this.name = 'MissingToolError';
  }
}
