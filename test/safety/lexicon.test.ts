// The lexicon's template syntax (see LexiconData and "Lexicon format" in docs/safety.md):
// {set} placeholders, (a|b) alternatives, template-only _sets, comments, and the guards.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';

import { DEFAULT_LIMITS, expandLexicon, Lexicon, type LexiconData } from '../../src/safety/lexicon.ts';

const lexicon = (data: Partial<LexiconData>): LexiconData => ({
  sets: {},
  rules: [],
  exceptions: [],
  softeners: [],
  ...data,
});
const terms = (data: Partial<LexiconData>) => expandLexicon(lexicon(data)).rules[0]!.terms;
const rule = (...t: string[]): LexiconData['rules'][number] => ({ category: 'violence', severity: 'medium', terms: t });

describe('lexicon templates', () => {
  test('{set} stands for every entry of the set', () => {
    assert.deepEqual(terms({ sets: { _pet: ['dog', 'cat'] }, rules: [rule('kicking a {_pet}')] }), [
      'kicking a dog',
      'kicking a cat',
    ]);
    assert.deepEqual(terms({ sets: { _pet: ['dog', 'cat'] }, rules: [rule('{_pet}')] }), ['dog', 'cat']);
  });

  test('several placeholders expand to their cartesian product', () => {
    const sets = { _verb: ['kick', 'hit'], _pet: ['dog', 'cat'] };
    assert.deepEqual(terms({ sets, rules: [rule('{_verb} the {_pet}')] }), [
      'kick the dog',
      'kick the cat',
      'hit the dog',
      'hit the cat',
    ]);
  });

  test('(a|b) alternatives, an empty one making a part optional, groups holding placeholders', () => {
    assert.deepEqual(terms({ rules: [rule('(cut|slit) (her|his) wrists')] }), [
      'cut her wrists',
      'cut his wrists',
      'slit her wrists',
      'slit his wrists',
    ]);
    assert.deepEqual(terms({ rules: [rule('jump off (|the) bridge')] }), ['jump off bridge', 'jump off the bridge']);
    assert.deepEqual(terms({ sets: { _pet: ['dog'] }, rules: [rule('a ({_pet}|cat|(big|small) bird)')] }), [
      'a dog',
      'a cat',
      'a big bird',
      'a small bird',
    ]);
  });

  test('sets may use other sets, and repeats are dropped', () => {
    const data = expandLexicon(
      lexicon({
        sets: { _pet: ['dog', 'cat'], animals: ['{_pet}', 'horse', 'dog'], creatures: ['{animals}', 'wild {_pet}'] },
        rules: [{ ...rule('kick'), near: 'creatures' }],
      }),
    );
    assert.deepEqual(data.sets, {
      animals: ['dog', 'cat', 'horse'],
      creatures: ['dog', 'cat', 'horse', 'wild dog', 'wild cat'],
    });
  });

  test("template-only sets are never matched and cannot be a rule's near", () => {
    const lex = new Lexicon(
      lexicon({ sets: { _weapon: ['knife'], people: ['man'] }, rules: [{ ...rule('stabbing'), near: 'people' }] }),
    );
    assert.deepEqual(Object.keys(lex.data.sets), ['people']);
    assert.equal(lex.isTerm('knife'), false);
    assert.equal(lex.score('stabbing a man').severities.violence, 'medium');
    assert.throws(
      () => expandLexicon(lexicon({ sets: { _people: ['man'] }, rules: [{ ...rule('stab'), near: '_people' }] })),
      /near "_people".*template-only/,
    );
    assert.throws(() => expandLexicon(lexicon({ rules: [{ ...rule('stab'), near: 'nobody' }] })), /near "nobody"/);
  });

  test('an unknown set is an error naming the phrase', () => {
    assert.throws(
      () => expandLexicon(lexicon({ rules: [rule('kicking a {pets}')] })),
      /"kicking a \{pets\}".*unknown set "pets"/,
    );
    assert.throws(() => expandLexicon(lexicon({ exceptions: ['a {_nope} b'] })), /"a \{_nope\} b"/);
  });

  test('a cycle between sets is an error naming the sets', () => {
    assert.throws(
      () => expandLexicon(lexicon({ sets: { _a: ['x {_b}'], _b: ['y {_c}'], _c: ['{_a}'] } })),
      /cycle: _a → _b → _c → _a/,
    );
    assert.throws(() => expandLexicon(lexicon({ sets: { _self: ['{_self} too'] } })), /cycle: _self → _self/);
  });

  test('malformed templates are errors naming the phrase', () => {
    for (const bad of ['(a|b', 'a|b', 'a)', '{x', 'x}', '{}', '{a(b}'])
      assert.throws(
        () => expandLexicon(lexicon({ exceptions: [bad] })),
        new RegExp(`lexicon phrase ${JSON.stringify(bad).replace(/[|()[\]{}]/g, '\\$&')}`),
      );
  });

  test('blow-ups are refused: one phrase expanding too far, or the whole lexicon', () => {
    const words = Array.from({ length: 200 }, (_, i) => `w${i}`);
    assert.throws(
      () => expandLexicon(lexicon({ sets: { _w: words }, rules: [rule('{_w} {_w}')] })),
      /"\{_w\} \{_w\}" expands to 40000 phrases \(more than 20000\)/,
    );
    const many = lexicon({
      sets: { _w: words },
      rules: [rule('{_w} {_w} x')].concat(Array.from({ length: 5 }, (_, i) => rule(`{_w} {_w} y${i}`))),
    });
    assert.throws(() => expandLexicon(many, { perPhrase: 50_000, total: 200_000 }), /more than 200000 phrases/);
    assert.equal(expandLexicon(many, { perPhrase: 50_000, total: 300_000 }).rules.length, 6);
  });

  test('comments are ignored: "//" keys and list entries starting with //', () => {
    const data = expandLexicon({
      '//': 'file comment',
      sets: { '//': 'sets comment', people: ['// who', 'man'] } as unknown as LexiconData['sets'],
      rules: [{ '//': 'rule comment', ...rule('// family one', 'stab', '  // indented', 'kick') }],
      exceptions: ['// innocent', 'kick off'],
      softeners: [
        { '//': 'softener comment', categories: ['violence'], words: ['// games', 'football'], window: 4, lower: 1 },
      ],
    });
    assert.deepEqual(data, {
      sets: { people: ['man'] },
      rules: [{ category: 'violence', severity: 'medium', terms: ['stab', 'kick'] }],
      exceptions: ['kick off'],
      softeners: [{ categories: ['violence'], words: ['football'], window: 4, lower: 1 }],
    });
  });

  test('runs of spaces collapse and ends are trimmed', () => {
    assert.deepEqual(terms({ rules: [rule('(|a) bomb ( |)')] }), ['bomb', 'a bomb']);
  });
});

describe('the shipped lexicon', () => {
  const source = JSON.parse(
    readFileSync(new URL('../../src/safety/lexicon.json', import.meta.url), 'utf8'),
  ) as LexiconData;
  const data = expandLexicon(source);
  const phrases = (d: LexiconData) =>
    Object.values(d.sets).flat().length +
    d.rules.flatMap((r) => r.terms).length +
    d.exceptions.length +
    d.softeners.flatMap((s) => s.words).length;

  test('is written compactly and expands within a reasonable bound', () => {
    const n = phrases(data);
    assert.ok(n > 10_000 && n < DEFAULT_LIMITS.total / 4, `${n} phrases`);
    assert.ok(
      phrases({ ...source, sets: Object.fromEntries(Object.entries(source.sets).filter(([k]) => k !== '//')) }) <
        n / 2.5,
    );
  });

  test('loads, and its near-rules only name matchable sets', () => {
    const lex = Lexicon.load();
    for (const r of lex.data.rules) if (r.near !== undefined) assert.ok(r.near in lex.data.sets, r.near);
    assert.ok(!Object.keys(lex.data.sets).some((s) => s.startsWith('_')));
    assert.equal(lex.score('a man kicking a puppy').severities.violence, 'medium');
    assert.equal(lex.score('shooting a portrait at sunset').severities.violence, 'safe');
  });
});
