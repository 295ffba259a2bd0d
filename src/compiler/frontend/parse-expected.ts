// Condenses ohm's list of expected things ("_", a letter, a digit, "(", "-", ...) into the words a
// person thinks in: "an expression", "a statement", "a top-level item".

const EXPRESSION_STARTS = ['a name', 'a number', 'a string', '"true"', '"false"', '"("', '"-"', '"not"', '"if"'];
const STATEMENT_STARTS = ['"dims"', '"input"', '"output"', '"let"', '"for"', '"repeat"', '"if"', '"assert"', '"return"'];
const OPERATORS = ['"+"', '"-"', '"*"', '"/"', '"%"', '"**"', '"=="', '"!="', '"<"', '"<="', '">"', '">="', '"and"', '"or"', '".."'];
const TOP_LEVEL = 'a top-level item (import, block, model, diffusion, let)';
const ITEM_STARTS = ['"import"', '"block"', '"model"', '"diffusion"', '"let"'];

function replaceGroup(items: string[], group: string[], minimum: number, word: string, alsoDrop: string[] = []): string[] {
  const present = items.filter((i) => group.includes(i));
  if (present.length < minimum) return items;
  const drop = new Set([...group, ...alsoDrop]);
  const kept = items.filter((i) => !drop.has(i));
  return [...kept, word];
}

export function describeExpected(raw: readonly string[]): string {
  // At the top level ohm reports "end of input" where another item could have started.
  const rename = (r: string) => (r === 'a letter' || r === '"_"' ? 'a name' : r === 'a digit' ? 'a number'
    : r === 'end of input' ? TOP_LEVEL : r);
  let items = [...new Set(raw.map(rename))];
  items = replaceGroup(items, [...ITEM_STARTS, TOP_LEVEL], 3, TOP_LEVEL);
  items = replaceGroup(items, STATEMENT_STARTS, 4, 'a statement', ['a name', '"("']);
  items = replaceGroup(items, EXPRESSION_STARTS, 3, 'an expression');
  items = replaceGroup(items, OPERATORS, 4, 'an operator');
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')}${items.length > 2 ? ',' : ''} or ${items[items.length - 1]}`;
}
