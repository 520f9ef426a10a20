import { Controller, Get, Inject } from '@nestjs/common';
import { AgencyProblem } from '../http/agency-problem.js';
import { AgencyStore } from '../store/agency-store.js';
import { AGENCY_CONFIG } from '../tokens.js';
import type { AgencyConfig } from '../config/agency-config.js';

@Controller('health')
export class HealthController {
  constructor(
    private readonly store: AgencyStore,
    @Inject(AGENCY_CONFIG) private readonly config: AgencyConfig,
  ) {}

  @Get('live')
  live(): { status: 'live' } {
    return { status: 'live' };
  }

  /** Ready once the store is open (the hub key and answer keys were loaded before the server listened). */
  @Get('ready')
  ready(): { status: 'ready'; agencyId: string; persons: number; heldItems: number; records: number } {
    let counts;
    try {
      if (!this.store.ping()) throw new Error('closed');
      counts = this.store.counts();
    } catch {
      throw new AgencyProblem('NOT_READY', 'the agency store is not open; see the server log');
    }
    return { status: 'ready', agencyId: this.config.agencyId, ...counts };
  }
}
