import { describe, expect, it } from 'vitest'
import { ErrorCode, SerializationError } from '../errors.js'
import { pgLiteralSafe, pgTextLiteral } from './postgres-literal.js'

describe('pgTextLiteral', () => {
  it.each([
    ['', "E''"],
    ['0193a3b2-1111-7000-8000-123456789abc', "E'0193a3b2-1111-7000-8000-123456789abc'"],
    ["it's", "E'it''s'"],
    ["''", "E''''''"],
    ['a\\b', "E'a\\\\b'"],
    ['\\', "E'\\\\'"],
    ["\\'", "E'\\\\'''"],
    ["x'); DROP TABLE t; --", "E'x''); DROP TABLE t; --'"],
    ['$$ -- /* */ ; "q"', 'E\'$$ -- /* */ ; "q"\''],
    ['line\nnext\ttab\r', "E'line\nnext\ttab\r'"],
    ['ünïcode 😀 עברית', "E'ünïcode 😀 עברית'"],
  ])('renders %j as %s', (text, literal) => {
    expect(pgTextLiteral(text)).toBe(literal)
  })

  it('doubles every backslash and quote, and nothing else', () => {
    const text = "\\'\\\\''a\\"
    const body = pgTextLiteral(text).slice(2, -1)
    expect(body).toBe(text.replaceAll('\\', '\\\\').replaceAll("'", "''"))
  })

  it.each(['\u0000', 'a\u0000b', "x'\u0000"])(
    'refuses %j (NUL) with SWITCHYARD_UNENCODABLE',
    (text) => {
      expect(pgLiteralSafe(text)).toBe(false)
      expect(() => pgTextLiteral(text)).toThrow(SerializationError)
      try {
        pgTextLiteral(text)
      } catch (error) {
        expect((error as SerializationError).code).toBe(ErrorCode.Unencodable)
        expect((error as SerializationError).retryable).toBe(false)
      }
    },
  )

  it('refuses what is not text', () => {
    expect(() => pgTextLiteral(42 as unknown as string)).toThrow(SerializationError)
  })

  it('accepts text without NUL', () => {
    expect(pgLiteralSafe("a'\\😀")).toBe(true)
  })
})
