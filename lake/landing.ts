// Naming rules of the landing zone, shared by the generator (writer) and bronze (reader).
import type { Scenario } from '../rules/generator';

/** Temp files start with a dot or end in .tmp: readers of the landing zone skip them. */
export function isTempLandingName(name: string): boolean {
  return name.startsWith('.') || name.endsWith('.tmp');
}

export function landingFileName(scenario: Scenario, tickTime: Date, tick: number): string {
  const stamp = tickTime.toISOString().replace(/[-:]/g, '').replace('.', '');
  return `${scenario.device}_${scenario.status}_${stamp}_${String(tick).padStart(8, '0')}.parquet`;
}
