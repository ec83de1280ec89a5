// Input of the generator workflow (the device simulator) and its defaults.
import { z } from 'zod';
import { landingLocationSchema } from './landing';
import { deviceSchema, statusSchema } from './events';

export const scenarioSchema = z.object({
  device: deviceSchema,
  status: statusSchema,
  count: z.number().int().min(1).max(1_000_000),
});
export type Scenario = z.infer<typeof scenarioSchema>;

/** The source system's four scenarios and their rows per batch. */
export const DEFAULT_SCENARIOS: Scenario[] = [
  { device: 'Computador', status: 'Conectado', count: 40 },
  { device: 'Celular', status: 'Conectado', count: 80 },
  { device: 'Computador', status: 'Desconectado', count: 70 },
  { device: 'Celular', status: 'Desconectado', count: 60 },
];

export const populationSchema = z
  .object({
    /** Stable clients, each with one device, Ip, Nome, plan speed and home server. */
    clients: z.number().int().min(1).max(1_000_000).default(500),
    servers: z.number().int().min(1).max(1000).default(12),
    regions: z.array(z.string().regex(/^[a-z]{2,8}$/, 'lowercase letters')).min(1).default(['sp', 'rj', 'mg', 'rs']),
  })
  .strict();
export type Population = z.output<typeof populationSchema>;

export const generatorInputSchema = z
  .object({
    /**
     * random: the source system's simulator, a new random person and IP for every event.
     * population: stable clients and servers whose devices connect and disconnect over time;
     * files carry the extra column Servidor.
     */
    mode: z.enum(['random', 'population']).default('random'),
    population: populationSchema.default(populationSchema.parse({})),
    scenarios: z
      .array(scenarioSchema)
      .min(1)
      .refine(
        (list) => new Set(list.map((s) => `${s.device}/${s.status}`)).size === list.length,
        'each device/status pair may appear once',
      )
      .default(DEFAULT_SCENARIOS),
    /** Seconds between ticks; 0 writes ticks back to back. */
    intervalSeconds: z.number().min(0).max(86_400).default(10),
    /** Number of ticks to write; omit to run until cancelled. */
    ticks: z.number().int().min(1).optional(),
    /** Seed for reproducible rows; omitted, the workflow draws one and keeps it in its state. */
    seed: z.number().int().min(0).max(2 ** 31 - 1).optional(),
    /** Simulated clock start (ISO 8601); with a seed, makes timestamps reproducible too. */
    startTime: z.iso.datetime({ offset: true }).optional(),
    /** Landing zone root; omitted, the worker's configured landing folder. */
    landingPath: landingLocationSchema.optional(),
    /** Ticks per workflow run before continueAsNew keeps history small. */
    ticksPerRun: z.number().int().min(1).max(10_000).default(500),
  })
  .strict();

export type GeneratorInput = z.input<typeof generatorInputSchema>;
export type GeneratorConfig = z.output<typeof generatorInputSchema>;

/** Carried across continueAsNew. */
export interface GeneratorProgress {
  ticksDone: number;
  filesWritten: number;
  rowsWritten: number;
  seed: number;
  lastFiles: string[];
  lastTickAt?: string;
  /** population mode: which clients are connected, one bit each, base64. */
  connected?: string;
}

export interface LandingBatchRequest {
  landingPath?: string;
  tick: number;
  tickTime: string;
  intervalSeconds: number;
  seed: number;
  scenarios: Scenario[];
  mode: 'random' | 'population';
  population: Population;
  connected?: string;
}

export interface LandingFile {
  path: string;
  rows: number;
  device: string;
  status: string;
}

export interface LandingBatch {
  files: LandingFile[];
  /** population mode: the connected-clients bitmap after this tick. */
  connected?: string;
}
