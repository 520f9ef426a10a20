import { Body, Controller, Get, HttpCode, HttpStatus, Param, Post, Query, Req, Res } from '@nestjs/common';
import { CommandBus } from '@nestjs/cqrs';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { noticeStreamId } from '#linkage';
import { type StoredNotice } from '#projections';
import { EventSealer } from '#sealing';
import { ApiCommandHeaders, markReplayed } from '../http/api-headers.js';
import { HubProblem } from '../http/hub-problem.js';
import { ApiProblems, BODY_PROBLEMS, COMMON_PROBLEMS } from '../http/problem.dto.js';
import { Meta, type RequestMeta } from '../http/request-meta.js';
import { Authenticator } from '../linkage/authenticator.js';
import { LinkageViews } from '../linkage/linkage-views.js';
import { IdentifierVault } from '../vault/identifier-vault.js';
import { NoticeInbox } from './notice-inbox.service.js';
import { CitizenNoticesQuery, CitizenNoticesResponse, NoticeIdParam, NoticeReadResponse, SendNoticeRequest, SentNoticeResponse } from './notices.dto.js';
import { ReadNoticeCommand, type ReadNoticeResult } from './read-notice.handler.js';
import { SendNoticeCommand } from './send-notice.handler.js';
import { RecordsRefusals } from '../refusals/refusal.guard.js';

@ApiTags('notices')
@Controller()
export class NoticesController {
  constructor(
    private readonly commandBus: CommandBus,
    private readonly auth: Authenticator,
    private readonly inbox: NoticeInbox,
    private readonly views: LinkageViews,
    private readonly vault: IdentifierVault,
    private readonly sealer: EventSealer,
  ) {}

  @Post('v1/notices')
  @RecordsRefusals('SendNotice')
  @HttpCode(HttpStatus.CREATED)
  @ApiBearerAuth()
  @ApiCommandHeaders()
  @ApiOperation({
    summary: 'Send a person a notice (お知らせ), addressed by the sending agency\'s own code.',
    description: 'The text is sealed in the log (the hub keeps no personal data in the clear) and shown only to that person.',
  })
  @ApiCreatedResponse({ type: SentNoticeResponse })
  @ApiProblems(...BODY_PROBLEMS, 'UNAUTHENTICATED', 'UNKNOWN_CODE', 'IDEMPOTENCY_KEY_REUSED', ...COMMON_PROBLEMS)
  async send(
    @Req() request: FastifyRequest,
    @Body() body: SendNoticeRequest,
    @Meta() meta: RequestMeta,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<SentNoticeResponse> {
    const { agencyId } = await this.auth.agency(request);
    const outcome = await this.commandBus.execute(new SendNoticeCommand(agencyId, body.code, body.title, body.body, { actor: `agency:${agencyId}`, ...meta }));
    markReplayed(reply, outcome.replayed);
    return outcome.value;
  }

  @Get('v1/citizens/me/notices')
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'The calling citizen\'s notices (お知らせ), newest first, paged with `before`, with their read state.',
    description: 'Authenticated as the citizen. Each notice has `readAt` (the first time it was read, or null); the page has `unread`, the number of all the person\'s unread notices.',
  })
  @ApiOkResponse({ type: CitizenNoticesResponse })
  @ApiProblems('UNAUTHENTICATED', 'VALIDATION_FAILED', ...COMMON_PROBLEMS)
  async citizen(@Req() request: FastifyRequest, @Query() query: CitizenNoticesQuery): Promise<CitizenNoticesResponse> {
    const subjectId = await this.auth.citizen(request);
    const { limit, before } = query;
    const page = await (await this.inbox.current()).notices(subjectId, { ...(limit === undefined ? {} : { limit }), ...(before === undefined ? {} : { before }) });
    return {
      notices: page.notices.map((n) => {
        const { title, body } = this.#text(n);
        const sender = this.views.agency(n.agencyId);
        return { noticeId: n.noticeId, serial: n.serial, from: { agencyId: n.agencyId, name: sender.status === 'unregistered' ? n.agencyId : sender.agency.name }, title, body, sentAt: n.sentAt, readAt: n.readAt };
      }),
      ...(page.next === undefined ? {} : { next: page.next }),
      unread: page.unread,
    };
  }

  @Post('v1/citizens/me/notices/:noticeId/read')
  @RecordsRefusals('ReadNotice')
  @HttpCode(HttpStatus.OK)
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'Mark one of the calling citizen\'s notices read.',
    description:
      'Idempotent: the first read is recorded (a NoticeRead event on the notice\'s stream, its own serial, the person sealed) and its time answered; ' +
      'reading again records nothing and answers the first time. A notice that is not the caller\'s is 404 UNKNOWN_NOTICE, recorded as a refusal. No body.',
  })
  @ApiOkResponse({ type: NoticeReadResponse })
  @ApiProblems('UNAUTHENTICATED', 'VALIDATION_FAILED', 'UNKNOWN_NOTICE', ...COMMON_PROBLEMS)
  async read(@Req() request: FastifyRequest, @Param() params: NoticeIdParam, @Meta() meta: RequestMeta): Promise<NoticeReadResponse> {
    const subjectId = await this.auth.citizen(request);
    const result = await this.commandBus.execute<ReadNoticeCommand, ReadNoticeResult>(new ReadNoticeCommand(subjectId, params.noticeId, meta.correlationId));
    return { noticeId: result.noticeId, readAt: result.readAt };
  }

  /** A notice's text: the event's sealed section opened by the sealer, or (logs written before sealing) the vault's value. */
  #text(n: StoredNotice): { readonly title: string; readonly body: string } {
    const streamId = noticeStreamId(n.noticeId);
    if (n.schemaVersion < 2) return this.vault.unsealNotice(n.sealed as Record<string, string>, streamId);
    const opened = this.sealer.open({ type: 'NoticeSent', schemaVersion: n.schemaVersion, streamId, data: { sealed: n.sealed } });
    const d = opened.event.data as { title?: unknown; body?: unknown };
    if (typeof d.title !== 'string' || typeof d.body !== 'string') throw new HubProblem('INTERNAL', `notice ${n.noticeId} no longer opens`);
    return { title: d.title, body: d.body };
  }
}
