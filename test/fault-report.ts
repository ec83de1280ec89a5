// The fault suites' report. Each suite (test/reliability.test.ts, test/outages.test.ts) registers
// its cases with faultCase and says what each one checked; once every case of a suite ran and
// passed, the suite writes its part, and the report is put together from this run's parts:
// test-output/reliability.md, or docs/reliability.md when NETPULSE_RELIABILITY_REPORT names it
// (`npm run reliability-report`), never by a plain test run.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { TEST_OUTPUT } from './helpers';

export interface Section {
  name: string;
  checked: string[];
  /** Cases compared with a clean run: one row per figure, [figure, clean run, with the fault]. */
  comparison?: { rows: [string, string, string][]; same: boolean };
}

interface Part {
  run: string;
  order: number;
  intro: string[];
  sections: Section[];
}

const REPORT = process.env.NETPULSE_RELIABILITY_REPORT
  ? path.resolve(__dirname, '..', process.env.NETPULSE_RELIABILITY_REPORT)
  : path.join(TEST_OUTPUT, 'reliability.md');
const PARTS = path.join(TEST_OUTPUT, 'reliability-parts');

/** A suite's cases and what they checked; `order` places its part in the report. */
export function faultSuite(name: string, order: number, intro: string[]) {
  const sections: Section[] = [];
  const registered = new Set<string>();
  const passed = new Set<string>();
  return {
    /** A test whose section counts only if it passes. */
    faultCase(title: string, body: () => Promise<void>, timeoutMs?: number): void {
      const key = `${registered.size}:${title}`;
      registered.add(key);
      test(title, async () => {
        await body();
        passed.add(key);
      }, timeoutMs);
    },
    /** What a case checked (and, for cases compared with a clean run, the comparison). */
    note(section: string, checked: string[], comparison?: Section['comparison']): void {
      sections.push({ name: section, checked, ...(comparison && { comparison }) });
    },
    /** The suite's afterAll: its part, then the report from this run's parts, only when all its cases ran and passed (not under -t). */
    write(): void {
      if (passed.size !== registered.size || sections.length === 0) {
        console.warn(`[${name}] ${registered.size - passed.size} of ${registered.size} cases did not run or pass: its part of ${REPORT} not written`);
        return;
      }
      mkdirSync(PARTS, { recursive: true });
      const run = process.env.NETPULSE_TEST_RUN_DIR ?? '';
      writeFileSync(path.join(PARTS, `${name}.json`), JSON.stringify({ run, order, intro, sections } satisfies Part));
      const parts = readdirSync(PARTS).map((f) => JSON.parse(readFileSync(path.join(PARTS, f), 'utf8')) as Part)
        .filter((p) => p.run === run).sort((a, b) => a.order - b.order);
      writeReport(parts);
    },
  };
}

function writeReport(parts: Part[]): void {
  const lines = [
    '# Reliability: the fault suites\' last run',
    '',
    `Written by \`test/reliability.test.ts\` and \`test/outages.test.ts\` on ${new Date().toISOString()}. Regenerate it on purpose with`,
    '`npm run reliability-report` (a plain `npm test` writes this report to test-output/reliability.md and leaves docs/ alone).',
    '',
  ];
  for (const part of parts) {
    lines.push(...part.intro, '');
    for (const s of part.sections) {
      lines.push(`## ${s.name}`, '', ...s.checked.map((c) => `- ${c}`));
      if (s.comparison) {
        lines.push(`- result: ${s.comparison.same ? '**equal to the clean run**' : '**DIFFERENT from the clean run**'}`, '');
        lines.push('| | clean run | with the fault |', '|---|---|---|', ...s.comparison.rows.map((r) => `| ${r.join(' | ')} |`));
      }
      lines.push('');
    }
  }
  mkdirSync(path.dirname(REPORT), { recursive: true });
  writeFileSync(REPORT, `${lines.join('\n')}\n`);
}
