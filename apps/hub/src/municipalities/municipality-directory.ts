import { readFileSync } from 'node:fs';
import { indexMunicipalities, parseMunicipalityList, type Municipality } from '#numbering';

/** The municipality list in force, loaded and checked once at boot. */
export class MunicipalityDirectory {
  private constructor(
    readonly version: string,
    private readonly byCode: ReadonlyMap<string, Municipality>,
  ) {}

  static fromFile(path: string): MunicipalityDirectory {
    const list = parseMunicipalityList(JSON.parse(readFileSync(path, 'utf8')) as unknown);
    return new MunicipalityDirectory(list.version, indexMunicipalities(list));
  }

  has(code: string): boolean {
    return this.byCode.has(code);
  }

  get size(): number {
    return this.byCode.size;
  }
}
