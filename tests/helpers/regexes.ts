// The regular expressions written in src/, found by parsing the TypeScript (so none is missed for
// its quoting or line breaks): for the ReDoS check and for spotting them at run time.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

const root = new URL('../..', import.meta.url).pathname;

export interface Found { where: string; source: string; flags: string }

const walk = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : /\.(ts|mts|cts|tsx)$/.test(name) ? [path] : [];
  });

/** Every regex literal and `RegExp(…)` of src/; `dynamic` lists constructors from non-literals. */
export function regexesOfSrc(): { found: Found[]; dynamic: string[] } {
  const found: Found[] = [];
  const dynamic: string[] = [];
  for (const file of walk(join(root, 'src'))) {
    const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
    const where = (node: ts.Node) => `${relative(root, file)}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}`;
    const visit = (node: ts.Node): void => {
      if (ts.isRegularExpressionLiteral(node)) {
        const end = node.text.lastIndexOf('/');
        found.push({ where: where(node), source: node.text.slice(1, end), flags: node.text.slice(end + 1) });
      } else if ((ts.isNewExpression(node) || ts.isCallExpression(node)) && ts.isIdentifier(node.expression) && node.expression.text === 'RegExp') {
        // `new RegExp('…', 'g')` with literal arguments is checked like a literal; anything built at run
        // time cannot be checked here and fails the test until it is rewritten or allowed.
        const [pattern, flags] = node.arguments ?? [];
        if (pattern && ts.isStringLiteralLike(pattern) && (!flags || ts.isStringLiteralLike(flags))) {
          found.push({ where: where(node), source: pattern.text, flags: flags && ts.isStringLiteralLike(flags) ? flags.text : '' });
        } else {
          dynamic.push(where(node));
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return { found, dynamic };
}
