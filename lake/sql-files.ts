// The project's SQL files (sql/<layer>/<name>.sql) with their :parameters bound as literals the
// caller made safe (numbers, quoted strings, SQL it wrote itself).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { config } from '../config';

export function sqlFile(layer: string, name: string, params: Record<string, string>): string {
  const file = `sql/${layer}/${name}.sql`;
  const text = readFileSync(path.join(config.projectRoot, file), 'utf8');
  return text.replace(/:([a-z_]+)/g, (_match, key: string) => {
    if (!(key in params)) throw new Error(`${file}: unknown parameter :${key}`);
    return params[key];
  });
}
