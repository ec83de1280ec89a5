// The source system's record: field names are Portuguese because the devices send them so.
import { z } from 'zod';

export const DEVICES = ['Computador', 'Celular'] as const;
export const STATUSES = ['Conectado', 'Desconectado'] as const;
export const SPEEDS_MBPS = [1, 5, 10, 15, 25, 35, 50, 100, 200, 400, 500, 1000] as const;

export type Device = (typeof DEVICES)[number];
export type Status = (typeof STATUSES)[number];

/** Column order and DuckDB types of a landing file, as the source system's pandas→Spark write produced them. */
export const LANDING_COLUMNS = [
  ['Nome', 'VARCHAR'],
  ['Endereco', 'VARCHAR'],
  ['Ip', 'VARCHAR'],
  ['Hora_Conexao', 'TIMESTAMP'],
  ['Dispositivo_de_Acesso', 'VARCHAR'],
  ['Velocidade_de_Conexao', 'BIGINT'],
  ['Status_Conexao', 'VARCHAR'],
] as const;

export const deviceSchema = z.enum(DEVICES);
export const statusSchema = z.enum(STATUSES);
