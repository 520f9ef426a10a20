import { Body, Controller, Inject, Post, Req, Res } from '@nestjs/common';
import { Command, CommandBus, CommandHandler, EventBus, type ICommandHandler } from '@nestjs/cqrs';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';
import { IsString } from 'class-validator';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { EventStore, RecordedEvent } from '#ledger';
import { CodeLocator } from '#mapper';
import { EventSealer } from '#sealing';
import {
  agencyCodeDecider,
  agencyCodeStreamId,
  decideAgencyCode,
  legacyAgencyCodeStreamId,
  issuedCode,
  type AgencyCodeEvent,
  type AgencyCodeState,
  type AgencyId,
  type Evolvable,
  type SubjectId,
} from '#linkage';
import { HubProblem } from '../../http/hub-problem.js';
import { IsMyNumber } from '../../http/identifier.validators.js';
import { ApiProblems, BODY_PROBLEMS, COMMON_PROBLEMS } from '../../http/problem.dto.js';
import { Meta, type RequestMeta } from '../../http/request-meta.js';
import { EventsAppended } from '../../ledger/events-appended.event.js';
import type { Caller } from '../../ledger/idempotency.js';
import { hasCode, withRetries } from '../../ledger/retry.js';
import { CLOCK, LEDGER, type Clock } from '../../ledger/tokens.js';
import { IdentifierVault } from '../../vault/identifier-vault.js';
import { Authenticator } from '../authenticator.js';
import { LinkageViews } from '../linkage-views.js';
import { RecordsRefusals } from '../../refusals/refusal.guard.js';

export class AcquireAgencyCodeRequest {
  @ApiProperty({ description: 'The person\'s 個人番号, presented once to acquire the agency\'s code. Never stored in the clear, never in an event.', example: '123456789018' })
  @IsMyNumber()
  individualNumber!: string;

  @ApiProperty({ description: 'The agency\'s own reference for this acquisition (取得番号): 1–64 letters, digits, ".", "_", "-".', example: 'JPS-2026-000123' })
  @IsString()
  acquisitionNumber!: string;
}

export class AcquiredAgencyCodeResponse {
  @ApiProperty({ description: 'The agency\'s code for the person (機関別符号): 22 characters, unrelated to any other agency\'s code.' }) code!: string;
  @ApiProperty({ description: '処理通番 of the event that recorded this acquisition.' }) serial!: string;
  @ApiProperty({ format: 'date-time' }) acquiredAt!: string;
  @ApiProperty({ description: 'True when the agency already held a code for the person: the same code is returned.' }) reacquired!: boolean;
}

export interface AcquiredAgencyCode {
  readonly code: string;
  readonly serial: string;
  readonly acquiredAt: string;
  readonly reacquired: boolean;
  /** True when this request appended nothing (a retry with an acquisition number already recorded). */
  readonly replayed: boolean;
}

export class AcquireAgencyCodeCommand extends Command<AcquiredAgencyCode> {
  constructor(
    readonly agencyId: AgencyId,
    readonly individualNumber: string,
    readonly acquisitionNumber: string,
    readonly caller: Caller,
  ) {
    super();
  }
}

const CODE_TYPES = new Set(['AgencyCodeIssued', 'AgencyCodeReacquired']);

@CommandHandler(AcquireAgencyCodeCommand)
export class AcquireAgencyCodeHandler implements ICommandHandler<AcquireAgencyCodeCommand> {
  constructor(
    @Inject(LEDGER) private readonly store: EventStore,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly vault: IdentifierVault,
    private readonly views: LinkageViews,
    private readonly eventBus: EventBus,
    private readonly locator: CodeLocator,
    private readonly sealer: EventSealer,
  ) {}

  async execute({ agencyId, individualNumber, acquisitionNumber, caller }: AcquireAgencyCodeCommand): Promise<AcquiredAgencyCode> {
    const subjectId = await this.#subjectOf(individualNumber);
    // A held code drawn again (CLAIM_CONFLICT: the same person's locator and the same 72 random bits, 56 under a rotated key) is
    // drawn anew; a concurrent acquisition reloads.
    return withRetries(8, (e) => hasCode(e, 'WRONG_EXPECTED_REVISION', 'CLAIM_CONFLICT'), async () => {
      const { streamId, events } = await this.#stream(subjectId, agencyId);
      const state = events.reduce<AgencyCodeState>(
        (s, e) => (CODE_TYPES.has(e.type) ? agencyCodeDecider.evolve(s, e as unknown as Evolvable<AgencyCodeEvent>) : s),
        agencyCodeDecider.initialState(),
      );
      const acquiredAt = this.clock().toISOString();
      const candidateCode = this.locator.mint(subjectId);
      const decided = decideAgencyCode(
        {
          type: 'AcquireAgencyCode',
          data: { subjectId, agencyId, agency: this.views.facts(agencyId), acquisitionNumber, candidateCode, candidateCodeDigest: agencyCodeDigest(this.sealer, candidateCode), acquiredAt },
        },
        state,
      );
      if (decided.length === 0) return this.#replay(events, state, acquisitionNumber);
      const result = await this.store.append({
        streamId,
        expectedRevision: events.length === 0 ? 'no_stream' : events.at(-1)!.streamRevision,
        events: decided,
        serial: { allocate: true },
        metadata: { actor: caller.actor, correlationId: caller.correlationId },
      });
      this.eventBus.publish(EventsAppended.of(streamId, result, decided.map((e) => e.type)));
      const first = decided[0]!;
      const code = first.type === 'AgencyCodeIssued' ? first.data.code : issuedCode(state)!;
      return { code, serial: result.serial, acquiredAt, reacquired: first.type === 'AgencyCodeReacquired', replayed: false };
    });
  }

  /**
   * The pair's stream: `agency-code-<keyed digest of the pair>` (I10), or the stream a log written before
   * that holds for it (named after the subject), which is continued rather than given a second code.
   */
  async #stream(subjectId: SubjectId, agencyId: AgencyId): Promise<{ readonly streamId: string; readonly events: readonly RecordedEvent[] }> {
    const streamId = agencyCodeStreamId(this.sealer.handle('agency-code-stream', `${subjectId}|${agencyId}`));
    const events = await this.store.readStream(streamId);
    if (events.length > 0) return { streamId, events };
    const legacyId = legacyAgencyCodeStreamId(subjectId, agencyId);
    const legacy = await this.store.readStream(legacyId);
    return legacy.length > 0 ? { streamId: legacyId, events: legacy } : { streamId, events };
  }

  /** The person holding this number now. Only the number's keyed digest is looked up; the number goes no further. */
  async #subjectOf(individualNumber: string): Promise<SubjectId> {
    const digest = this.vault.digest('individual-number', individualNumber);
    let holder = this.views.holderOf(digest);
    if (holder === undefined) {
      await this.views.catchUp();
      holder = this.views.holderOf(digest);
    }
    if (holder === undefined) throw new HubProblem('UNKNOWN_INDIVIDUAL_NUMBER', 'no person holds this individual number; check it with the person');
    if (!holder.current) {
      throw new HubProblem('INDIVIDUAL_NUMBER_REVOKED', 'this individual number was replaced by a change of number (番号変更); ask the person for their current number');
    }
    return holder.subjectId;
  }

  /** A retry with an acquisition number already recorded: the same code and the serial that recorded it. */
  #replay(events: readonly RecordedEvent[], state: AgencyCodeState, acquisitionNumber: string): AcquiredAgencyCode {
    const recorded = events.find((e) => CODE_TYPES.has(e.type) && (e.data as { acquisitionNumber?: string }).acquisitionNumber === acquisitionNumber)!;
    const data = recorded.data as { issuedAt?: string; reacquiredAt?: string };
    return { code: issuedCode(state)!, serial: recorded.serial, acquiredAt: data.issuedAt ?? data.reacquiredAt ?? recorded.recordedAt, reacquired: recorded.type === 'AgencyCodeReacquired', replayed: true };
  }
}

@ApiTags('agency codes')
@Controller('v1/agency-codes')
export class AgencyCodesController {
  constructor(
    private readonly commandBus: CommandBus,
    private readonly auth: Authenticator,
  ) {}

  @Post()
  @RecordsRefusals('AcquireAgencyCode')
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'Acquire the calling agency\'s code for a person (符号取得).',
    description: 'The agency presents the person\'s individual number once; afterwards it uses only the code. 201 for a new code, 200 when the agency already held one (the same code). The same acquisition number again appends nothing.',
  })
  @ApiOkResponse({ type: AcquiredAgencyCodeResponse })
  @ApiProblems(...BODY_PROBLEMS, 'UNAUTHENTICATED', 'CHECK_DIGIT_MISMATCH', 'INVALID_ACQUISITION_NUMBER', 'PERSONAL_IDENTIFIER_IN_EVENT', 'UNKNOWN_INDIVIDUAL_NUMBER', 'INDIVIDUAL_NUMBER_REVOKED', 'AGENCY_REVOKED', ...COMMON_PROBLEMS)
  async acquire(
    @Req() request: FastifyRequest,
    @Body() body: AcquireAgencyCodeRequest,
    @Meta() meta: RequestMeta,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<AcquiredAgencyCodeResponse> {
    const agency = await this.auth.agency(request);
    const outcome = await this.commandBus.execute(new AcquireAgencyCodeCommand(agency.agencyId, body.individualNumber, body.acquisitionNumber, { actor: `agency:${agency.agencyId}`, ...meta }));
    void reply.status(outcome.reacquired ? 200 : 201);
    return { code: outcome.code, serial: outcome.serial, acquiredAt: outcome.acquiredAt, reacquired: outcome.reacquired };
  }
}

/** The keyed digest an agency code's uniqueness claim holds (the code itself is sealed, I10). */
export function agencyCodeDigest(sealer: EventSealer, code: string): string {
  return sealer.handle('agency-code', code, 32);
}
