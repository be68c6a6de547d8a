// A seeded mutation fuzz: whatever the bytes, the decoders answer a result or a DecodeError.
import { describe, expect, it } from 'vitest';
import { DecodeError } from './model.js';
import { decodeTracesRequest } from './wire-scanner.js';
import { decodeTracesRequestJson } from './json-decoder.js';
import { encodeTracesRequest } from './messages.js';
import { mutate, realisticRequest, seededRandom, toJson, toProto } from './testdata/requests.js';

const CASES = 3000;


function outcome(run: () => unknown): 'ok' | 'refused' {
  try {
    run();
    return 'ok';
  } catch (err) {
    if (!(err instanceof DecodeError)) throw err;
    return 'refused';
  }
}

describe('mutation fuzz (fixed seed)', () => {
  const spec = realisticRequest(6, 99);

  it(`the protobuf scanner answers a result or DecodeError for ${CASES} mutated and random inputs`, () => {
    const random = seededRandom(20240601);
    const seed = encodeTracesRequest(toProto(spec));
    const tally = { ok: 0, refused: 0 };
    for (let i = 0; i < CASES; i++) {
      const input = i % 10 === 9 ? Uint8Array.from({ length: Math.floor(random() * 200) }, () => Math.floor(random() * 256)) : mutate(seed, random);
      tally[outcome(() => decodeTracesRequest(input, { maxValueDepth: 4 }))]++;
    }
    // Both outcomes occur, so the cases exercise real parsing, not only early refusals.
    expect(tally.ok).toBeGreaterThan(50);
    expect(tally.refused).toBeGreaterThan(50);
  });

  it(`the JSON decoder answers a result or DecodeError for ${CASES} mutated inputs`, () => {
    const random = seededRandom(777);
    const seed = new TextEncoder().encode(JSON.stringify(toJson(spec)));
    const structural = new TextEncoder().encode('{}[]":,0-e.1tnfx\\');
    const tally = { ok: 0, refused: 0 };
    for (let i = 0; i < CASES; i++) {
      const input = mutate(seed, random);
      // Bias replacements towards JSON punctuation so that more mutants still parse.
      for (let k = 0; k < 2; k++) if (input.length) input[Math.floor(random() * input.length)] = structural[Math.floor(random() * structural.length)];
      tally[outcome(() => decodeTracesRequestJson(input))]++;
    }
    expect(tally.refused).toBeGreaterThan(50);
    // Valid JSON with wrong types must be refused by the decoder itself, not by JSON.parse.
    const typeErrors = ['{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":[],"spanId":{}}]}]}]}', '{"resourceSpans":[1]}', '{"resourceSpans":[{"scopeSpans":"x"}]}'];
    for (const text of typeErrors) expect(outcome(() => decodeTracesRequestJson(text))).toBe('refused');
  });
});
