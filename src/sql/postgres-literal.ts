/**
 * @internal Text as a PostgreSQL string literal, for the one statement that must travel without
 * parameters: the inbox record sent in the same simple-query message as `BEGIN` (the simple-query
 * protocol has no parameters; see postgres-unit-of-work.ts).
 *
 * The literal is an escape string, `E'…'`, with every `\` doubled and every `'` doubled, so it
 * reads back as the same text whatever `standard_conforming_strings` says (an `E` string always
 * treats `\` as an escape) and never ends early. Everything else (quotes of other kinds, `$$`,
 * `--`, `/*`, `;`, newlines, any Unicode) is inert inside the literal and goes as it is. The
 * driver sends the statement as UTF-8, as it does parameters.
 *
 * NUL (U+0000) is refused with a `SerializationError` (`SWITCHYARD_UNENCODABLE`): PostgreSQL text
 * cannot hold it, and the query message is NUL-terminated, so it would cut the statement short.
 * Callers that must keep the driver's own error for such a value check with {@link pgLiteralSafe}
 * first and use a parameter instead.
 */
import { ErrorCode, SerializationError } from '../errors.js'

const NEEDS_ESCAPING = /[\\']/
const ESCAPED = /[\\']/g

/** False when the text cannot be a literal (it holds a NUL character). */
export function pgLiteralSafe(text: string): boolean {
  return !text.includes('\u0000')
}

/** `text` as `E'…'`, or a `SerializationError` if it holds a NUL character. */
export function pgTextLiteral(text: string): string {
  if (typeof text !== 'string')
    throw new SerializationError(ErrorCode.Unencodable, 'Only text can become a SQL literal')
  if (!pgLiteralSafe(text))
    throw new SerializationError(
      ErrorCode.Unencodable,
      'PostgreSQL text cannot hold a NUL character (U+0000)',
      { details: { length: text.length } },
    )
  return NEEDS_ESCAPING.test(text)
    ? `E'${text.replace(ESCAPED, (c) => (c === '\\' ? '\\\\' : "''"))}'`
    : `E'${text}'`
}
