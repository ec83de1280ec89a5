// `netpulse watch`: event-driven passes. A file watcher (chokidar) on the landing zone signals the
// continuous pipeline to run a pass as soon as files are renamed into place, instead of waiting
// for its interval; the interval's listing stays as the safety net for anything the watcher misses.
import { Command } from 'commander';
import { watch, type FSWatcher } from 'chokidar';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { config } from '../config';
import { isTempLandingName } from '../lake/landing';
import { isRemotePath, resolveLocation } from '../lake/object-store';
import { triggerPassSignal } from '../workflows/pipeline';
import { CONTINUOUS_PIPELINE_ID } from './pipeline';
import { CliError, connectClient } from './connection';

export interface LandingWatcher {
  /** Passes asked for so far. */
  triggers: () => number;
  close: () => Promise<void>;
}

/**
 * Watches `landingDir` and signals `triggerPass` to `workflowId`, naming the folders where new
 * landing files appeared, once no file has come for `quietMs` (a generator tick lands its four
 * files 10-40 ms apart, and one signal for them saves a second pass), and at most `maxWaitMs`
 * after the first.
 */
export async function watchLanding(client: Client, landingDir: string, workflowId: string, quietMs = 50, maxWaitMs = 250): Promise<LandingWatcher> {
  mkdirSync(landingDir, { recursive: true });
  let timer: NodeJS.Timeout | undefined;
  let firstAt: number | undefined;
  let folders = new Set<string>();
  let triggers = 0;
  const watcher: FSWatcher = watch(landingDir, {
    ignoreInitial: true,
    // Temp names (the writer's .name.tmp) are skipped; the rename into place is an 'add'.
    ignored: (file) => isTempLandingName(path.basename(file)),
  });
  const fire = () => {
    clearTimeout(timer);
    timer = undefined;
    firstAt = undefined;
    triggers++;
    // The pass runs only the bronze sources of these folders.
    const request = { folders: [...folders] };
    folders = new Set();
    client.workflow.getHandle(workflowId).signal(triggerPassSignal, request).catch((error: Error) => {
      console.error(`watch: could not signal ${workflowId}: ${error.message}`);
    });
  };
  watcher.on('add', (file) => {
    folders.add(path.relative(landingDir, path.dirname(file)).split(path.sep).join('/'));
    firstAt ??= Date.now();
    clearTimeout(timer);
    timer = setTimeout(fire, Math.max(0, Math.min(quietMs, firstAt + maxWaitMs - Date.now())));
  });
  await new Promise<void>((resolve, reject) => watcher.once('ready', resolve).once('error', reject));
  return {
    triggers: () => triggers,
    close: async () => {
      clearTimeout(timer);
      await watcher.close();
    },
  };
}

export function watchCommand(): Command {
  return new Command('watch')
    .description(`signal the continuous pipeline (${CONTINUOUS_PIPELINE_ID}) to run a pass as soon as landing files arrive`)
    .option('--landing <dir>', 'landing zone root (default: data/landing)')
    .option('--id <workflowId>', 'pipeline workflow id', CONTINUOUS_PIPELINE_ID)
    .action(async (options) => {
      const landing = resolveLocation(options.landing ?? config.landingDir);
      // Object stores have no change notifications to watch here: the continuous pipeline lists the prefix each interval.
      if (isRemotePath(landing)) throw new CliError(`watch: ${landing} is on object storage; the continuous pipeline lists it every interval (netpulse continuous --interval)`, 2);
      const watcher = await watchLanding(await connectClient(), landing, options.id);
      console.log(`watching ${landing}: new files trigger a pass of ${options.id} (Ctrl-C to stop)`);
      await new Promise<void>((resolve) => process.once('SIGINT', resolve).once('SIGTERM', resolve));
      await watcher.close();
      console.log(`watch stopped after ${watcher.triggers()} triggered passes`);
    });
}
