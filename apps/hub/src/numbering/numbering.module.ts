import { Module } from '@nestjs/common';
import { LinkageModule } from '../linkage/linkage.module.js';
import { ChangeIndividualNumberHandler } from './commands/change-individual-number.handler.js';
import { ChangeCorporateNumberHandler, CloseCorporateNumberHandler } from './commands/corporate-number-record.handler.js';
import { DesignateCorporateNumberHandler } from './commands/designate-corporate-number.handler.js';
import { IssueIndividualNumberHandler } from './commands/issue-individual-number.handler.js';
import { CorporateDownloadController, CorporateNumbersController } from './corporate-numbers.controller.js';
import { CorporateRegistry } from './corporate-registry.service.js';
import { IndividualNumbersController } from './individual-numbers.controller.js';
import { NumberGenerator } from './number-generator.js';
import { GetCorporateNumberHandler } from './queries/get-corporate-number.handler.js';

@Module({
  imports: [LinkageModule],
  controllers: [IndividualNumbersController, CorporateNumbersController, CorporateDownloadController],
  providers: [
    CorporateRegistry, NumberGenerator, IssueIndividualNumberHandler, ChangeIndividualNumberHandler, DesignateCorporateNumberHandler,
    ChangeCorporateNumberHandler,
    CloseCorporateNumberHandler,
    GetCorporateNumberHandler,
  ],
})
export class NumberingModule {}
