/**
 * Emits one TypeScript module per API: typed values and read / write / sizeOf functions for the
 * request and the response, covering every version the definition declares valid.
 *
 * The code is straight-line per struct with version conditions (no schema walking at run time).
 *
 * Fields a version cannot carry: encoding a REQUEST with a non-default value in such a field (not
 * marked ignorable) throws UnsupportedVersionError, as Kafka's clients do, because dropping it
 * would change what the request asks. In RESPONSES such fields are dropped silently: a broker
 * fills one response shape and answers every version with the fields that version has.
 * Used only by the code generator; never shipped.
 */

import {
  contains,
  elementType,
  type Field,
  intersect,
  isEmpty,
  type Message,
  PRIMITIVES,
  type Range,
} from './schema.js';

interface StructDef {
  /** TS interface name (unique within the module). */
  tsName: string;
  fields: Field[];
  /** The message this struct belongs to (for flexible versions and the valid range). */
  msg: Message;
  isTop: boolean;
}

const FIXED_SIZES: Record<string, number> = {
  bool: 1,
  int8: 1,
  int16: 2,
  uint16: 2,
  int32: 4,
  uint32: 4,
  int64: 8,
  float64: 8,
  uuid: 16,
};

const READERS: Record<string, string> = {
  bool: 'bool',
  int8: 'int8',
  int16: 'int16',
  uint16: 'uint16',
  int32: 'int32',
  uint32: 'uint32',
  int64: 'int64',
  float64: 'float64',
  uuid: 'uuid',
};

/** JS condition that `v` lies in `r`, given that `v` is always within `valid`. */
function cond(r: Range, valid: Range): string {
  const x = intersect(r, valid);
  if (isEmpty(x)) return 'false';
  const parts: string[] = [];
  if (x.lo > valid.lo) parts.push(`v >= ${x.lo}`);
  if (x.hi < valid.hi) parts.push(`v <= ${x.hi}`);
  return parts.length === 0 ? 'true' : parts.join(' && ');
}

function isTaggedEverywhere(f: Field): boolean {
  return !isEmpty(f.tagged);
}

/** Versions in which the field is written inline (not in the tagged section). */
function inlineRange(f: Field): Range {
  return isEmpty(f.tagged) ? f.versions : { lo: 1, hi: 0 };
}

export class ModuleEmitter {
  private readonly structs: StructDef[] = [];
  private readonly byKey = new Map<string, StructDef>();
  private readonly lines: string[] = [];
  private readonly usedHelpers = new Set<string>();

  constructor(
    readonly apiName: string,
    readonly messages: Message[],
  ) {
    for (const m of messages) this.collect(m);
  }

  private structFields(m: Message, f: Field): Field[] {
    const type = elementType(f.type) ?? f.type;
    const fields = f.fields ?? m.commonStructs.get(type);
    if (!fields) throw new Error(`${m.name}.${f.name}: unknown struct type ${type}`);
    return fields;
  }

  private collect(m: Message): void {
    const top: StructDef = { tsName: m.name, fields: m.fields, msg: m, isTop: true };
    this.structs.push(top);
    this.byKey.set(`${m.name}:`, top);
    const walk = (fields: Field[]) => {
      for (const f of fields) {
        const type = elementType(f.type) ?? f.type;
        if (PRIMITIVES.has(type)) continue;
        const key = `${m.name}:${type}`;
        if (this.byKey.has(key)) continue;
        const taken = this.structs.some((s) => s.tsName === type);
        const def: StructDef = {
          tsName: taken ? `${m.name}${type}` : type,
          fields: this.structFields(m, f),
          msg: m,
          isTop: false,
        };
        this.structs.push(def);
        this.byKey.set(key, def);
        walk(def.fields);
      }
    };
    walk(m.fields);
  }

  private struct(m: Message, type: string): StructDef {
    const s = this.byKey.get(`${m.name}:${type}`);
    if (!s) throw new Error(`no struct ${type} in ${m.name}`);
    return s;
  }

  // ---- types and defaults ----

  private tsType(m: Message, f: Field): string {
    const nullable = !isEmpty(intersect(f.nullable, f.versions));
    const el = elementType(f.type);
    if (el !== null) {
      const inner = PRIMITIVES.has(el) ? this.primitiveTs(m, el) : this.struct(m, el).tsName;
      return `${inner}[]${nullable ? ' | null' : ''}`;
    }
    if (PRIMITIVES.has(f.type)) {
      const t = this.primitiveTs(m, f.type);
      return nullable || f.type === 'records' ? `${t} | null` : t;
    }
    return this.struct(m, f.type).tsName;
  }

  private primitiveTs(m: Message, t: string): string {
    if (t === 'bool') return 'boolean';
    if (t === 'string') return 'string';
    if (t === 'bytes' || t === 'uuid') return 'Buffer';
    if (t === 'records') return m.kind === 'response' ? 'Buffer | RecordsRef' : 'Buffer';
    return 'number';
  }

  private defaultExpr(m: Message, f: Field): string {
    const nullable = !isEmpty(intersect(f.nullable, f.versions));
    const d = f.default;
    const el = elementType(f.type);
    if (el !== null) return d === 'null' && nullable ? 'null' : '[]';
    switch (f.type) {
      case 'bool':
        return d === true || d === 'true' ? 'true' : 'false';
      case 'string':
        if (d === 'null' && nullable) return 'null';
        return JSON.stringify(typeof d === 'string' ? d : '');
      case 'bytes':
        return nullable && (d === undefined || d === 'null') ? 'null' : 'Buffer.alloc(0)';
      case 'records':
        return 'null';
      case 'uuid':
        return 'Buffer.alloc(16)';
      default:
        break;
    }
    if (FIXED_SIZES[f.type] !== undefined) {
      if (d === undefined || d === '') return '0';
      const n = Number(d);
      if (!Number.isFinite(n)) throw new Error(`${f.name}: bad default ${String(d)}`);
      return String(Math.max(-Number.MAX_SAFE_INTEGER, Math.min(Number.MAX_SAFE_INTEGER, n)));
    }
    return `default${this.struct(m, f.type).tsName}()`;
  }

  /** Expression that is true when `x` (an access path) holds the field's default. */
  private isDefaultExpr(m: Message, f: Field, x: string): string {
    const def = this.defaultExpr(m, f);
    const el = elementType(f.type);
    if (el !== null)
      return def === 'null' ? `${x} === null` : `(${x} !== null && ${x}.length === 0)`;
    if (f.type === 'uuid') return `${x}.every((b) => b === 0)`;
    if (f.type === 'bytes' || f.type === 'records') {
      return def === 'null' ? `${x} === null` : `(${x} !== null && ${x}.length === 0)`;
    }
    if (PRIMITIVES.has(f.type)) return `${x} === ${def}`;
    return `isDefault${this.struct(m, f.type).tsName}(${x})`;
  }

  // ---- read ----

  private flexCond(s: StructDef): string {
    return cond(s.msg.flexible, s.msg.valid);
  }

  private fieldFlex(_s: StructDef, f: Field): string {
    if (f.flexible !== null && isEmpty(f.flexible)) return 'false';
    return 'flex';
  }

  private readPrimitive(
    _s: StructDef,
    _f: Field,
    type: string,
    nullCond: string,
    flex: string,
  ): string {
    const r = READERS[type];
    if (r) return `r.${r}()`;
    if (type === 'records') return `(${flex} ? r.compactNullableBytes() : r.nullableBytes())`;
    const T = type === 'string' ? 'String' : 'Bytes';
    const nonNull = `(${flex} ? r.compact${T}() : r.${T.toLowerCase()}())`;
    if (nullCond === 'false') return nonNull;
    const nullable = `(${flex} ? r.compactNullable${T}() : r.nullable${T}())`;
    return nullCond === 'true' ? nullable : `(${nullCond} ? ${nullable} : ${nonNull})`;
  }

  private minElementBytes(type: string, flex: string): string {
    const fixed = FIXED_SIZES[type];
    if (fixed !== undefined) return String(fixed);
    if (type === 'string' || type === 'bytes')
      return `(${flex} ? 1 : ${type === 'string' ? 2 : 4})`;
    return '1';
  }

  private readValue(s: StructDef, f: Field): string {
    const m = s.msg;
    const flex = this.fieldFlex(s, f);
    const nullCond = cond(f.nullable, intersect(f.versions, m.valid));
    const el = elementType(f.type);
    if (el === null) {
      if (PRIMITIVES.has(f.type)) return this.readPrimitive(s, f, f.type, nullCond, flex);
      return `read${this.struct(m, f.type).tsName}(r, v)`;
    }
    const elem = PRIMITIVES.has(el)
      ? this.readPrimitive(s, f, el, 'false', flex)
      : `read${this.struct(m, el).tsName}(r, v)`;
    this.usedHelpers.add('readArray');
    return `readArray(r, ${flex}, ${this.minElementBytes(el, flex)}, ${nullCond}, () => ${elem})`;
  }

  private emitRead(s: StructDef): void {
    const m = s.msg;
    const exp = s.isTop ? 'export ' : '';
    this.lines.push(`${exp}function read${s.tsName}(r: Reader, v: number): ${s.tsName} {`);
    this.lines.push(`  const flex = ${this.flexCond(s)};`);
    this.lines.push(`  void flex;`);
    this.lines.push(`  const x: ${s.tsName} = {`);
    for (const f of s.fields) {
      const c = cond(inlineRange(f), m.valid);
      const def = this.defaultExpr(m, f);
      if (c === 'false') this.lines.push(`    ${f.prop}: ${def},`);
      else if (c === 'true') this.lines.push(`    ${f.prop}: ${this.readValue(s, f)},`);
      else this.lines.push(`    ${f.prop}: ${c} ? ${this.readValue(s, f)} : ${def},`);
    }
    this.lines.push('  };');
    const tagged = s.fields.filter(isTaggedEverywhere);
    if (tagged.length === 0) {
      this.lines.push('  if (flex) r.taggedFields();');
    } else {
      this.lines.push('  if (flex) {');
      this.lines.push('    r.taggedFields((tag) => {');
      this.lines.push('      switch (tag) {');
      for (const f of tagged) {
        this.lines.push(`        case ${f.tag}:`);
        this.lines.push(`          if (!(${cond(f.tagged, m.valid)})) return false;`);
        this.lines.push(`          x.${f.prop} = ${this.readValue(s, f)};`);
        this.lines.push('          return true;');
      }
      this.lines.push('        default:');
      this.lines.push('          return false;');
      this.lines.push('      }');
      this.lines.push('    });');
      this.lines.push('  }');
    }
    this.lines.push('  return x;');
    this.lines.push('}');
    this.lines.push('');
  }

  // ---- write and size ----

  private writePrimitive(type: string, nullCond: string, flex: string, x: string): string {
    const simple = READERS[type];
    if (simple) return `w.${simple}(${x});`;
    if (type === 'records') return `if (${flex}) w.compactRecords(${x}); else w.records(${x});`;
    const T = type === 'string' ? 'String' : 'Bytes';
    const lower = T.toLowerCase();
    if (nullCond === 'false') {
      return `if (${flex}) w.compact${T}(${x} as ${type === 'string' ? 'string' : 'Buffer'}); else w.${lower}(${x} as ${type === 'string' ? 'string' : 'Buffer'});`;
    }
    const nullable = `if (${flex}) w.compactNullable${T}(${x}); else w.nullable${T}(${x});`;
    if (nullCond === 'true') return nullable;
    const cast = type === 'string' ? 'string' : 'Buffer';
    return `if (${nullCond}) { ${nullable} } else if (${flex}) w.compact${T}(${x} as ${cast}); else w.${lower}(${x} as ${cast});`;
  }

  private sizePrimitive(type: string, nullCond: string, flex: string, x: string): string {
    const fixed = FIXED_SIZES[type];
    if (fixed !== undefined) return String(fixed);
    if (type === 'records') return `(${flex} ? sizeOfCompactRecords(${x}) : sizeOfRecords(${x}))`;
    const T = type === 'string' ? 'String' : 'Bytes';
    const cast = type === 'string' ? 'string' : 'Buffer';
    const nonNull = `(${flex} ? sizeOfCompact${T}(${x} as ${cast}) : sizeOf${T}(${x} as ${cast}))`;
    if (nullCond === 'false') return nonNull;
    const nullable = `(${flex} ? sizeOfCompactNullable${T}(${x}) : sizeOfNullable${T}(${x}))`;
    return nullCond === 'true' ? nullable : `(${nullCond} ? ${nullable} : ${nonNull})`;
  }

  private writeValue(s: StructDef, f: Field, x: string): string {
    const m = s.msg;
    const flex = this.fieldFlex(s, f);
    const nullCond = cond(f.nullable, intersect(f.versions, m.valid));
    const el = elementType(f.type);
    if (el === null) {
      if (PRIMITIVES.has(f.type)) return this.writePrimitive(f.type, nullCond, flex, x);
      return `write${this.struct(m, f.type).tsName}(w, ${x}, v);`;
    }
    const elem = PRIMITIVES.has(el)
      ? this.writePrimitive(el, 'false', flex, 'e')
      : `write${this.struct(m, el).tsName}(w, e, v);`;
    this.usedHelpers.add('writeArrayLength');
    return `{ const a = ${x}; writeArrayLength(w, ${flex}, a); if (a !== null) for (const e of a) { ${elem} } }`;
  }

  private sizeValue(s: StructDef, f: Field, x: string): string {
    const m = s.msg;
    const flex = this.fieldFlex(s, f);
    const nullCond = cond(f.nullable, intersect(f.versions, m.valid));
    const el = elementType(f.type);
    if (el === null) {
      if (PRIMITIVES.has(f.type)) return this.sizePrimitive(f.type, nullCond, flex, x);
      return `sizeOf${this.struct(m, f.type).tsName}(${x}, v)`;
    }
    this.usedHelpers.add('sizeOfArrayLength');
    const fixed = FIXED_SIZES[el];
    if (fixed !== undefined)
      return `(sizeOfArrayLength(${flex}, ${x}) + (${x}?.length ?? 0) * ${fixed})`;
    const elem = PRIMITIVES.has(el)
      ? this.sizePrimitive(el, 'false', flex, 'e')
      : `sizeOf${this.struct(m, el).tsName}(e, v)`;
    this.usedHelpers.add('sumOf');
    return `(sizeOfArrayLength(${flex}, ${x}) + sumOf(${x}, (e) => ${elem}))`;
  }

  private emitWrite(s: StructDef): void {
    const m = s.msg;
    const exp = s.isTop ? 'export ' : '';
    this.lines.push(
      `${exp}function write${s.tsName}(w: Writer, x: ${s.tsName}, v: number): void {`,
    );
    this.lines.push(`  const flex = ${this.flexCond(s)};`);
    this.lines.push(`  void flex;`);
    for (const f of s.fields) {
      const c = cond(inlineRange(f), m.valid);
      const body = this.writeValue(s, f, `x.${f.prop}`);
      const check =
        m.kind === 'request' && !f.ignorable && !isTaggedEverywhere(f) && PRIMITIVES.has(f.type)
          ? ` else if (!(${this.isDefaultExpr(m, f, `x.${f.prop}`)})) throw new UnsupportedVersionError('${m.name}.${f.prop}', v);`
          : '';
      if (c === 'true') this.lines.push(`  ${body}`);
      else if (c !== 'false') this.lines.push(`  if (${c}) { ${body} }${check}`);
      else if (check)
        this.lines.push(
          `  if (!(${this.isDefaultExpr(m, f, `x.${f.prop}`)})) throw new UnsupportedVersionError('${m.name}.${f.prop}', v);`,
        );
    }
    const tagged = s.fields.filter(isTaggedEverywhere);
    if (tagged.length === 0) {
      this.lines.push('  if (flex) w.uvarint(0);');
    } else {
      this.lines.push('  if (flex) {');
      for (const f of tagged) {
        this.lines.push(
          `    const t${f.tag} = (${cond(f.tagged, m.valid)}) && !(${this.isDefaultExpr(m, f, `x.${f.prop}`)});`,
        );
      }
      this.lines.push(`    w.uvarint(${tagged.map((f) => `(t${f.tag} ? 1 : 0)`).join(' + ')});`);
      for (const f of tagged) {
        this.lines.push(`    if (t${f.tag}) {`);
        this.lines.push(`      w.uvarint(${f.tag});`);
        this.lines.push(`      w.uvarint(${this.sizeValue(s, f, `x.${f.prop}`)});`);
        this.lines.push(`      ${this.writeValue(s, f, `x.${f.prop}`)}`);
        this.lines.push('    }');
      }
      this.lines.push('  }');
    }
    this.lines.push('}');
    this.lines.push('');
  }

  private emitSize(s: StructDef): void {
    const m = s.msg;
    const exp = s.isTop ? 'export ' : '';
    this.lines.push(`${exp}function sizeOf${s.tsName}(x: ${s.tsName}, v: number): number {`);
    this.lines.push(`  const flex = ${this.flexCond(s)};`);
    this.lines.push(`  void flex;`);
    this.lines.push('  let n = 0;');
    for (const f of s.fields) {
      const c = cond(inlineRange(f), m.valid);
      if (c === 'false') continue;
      const size = this.sizeValue(s, f, `x.${f.prop}`);
      this.lines.push(c === 'true' ? `  n += ${size};` : `  if (${c}) n += ${size};`);
    }
    const tagged = s.fields.filter(isTaggedEverywhere);
    if (tagged.length === 0) {
      this.lines.push('  if (flex) n += 1;');
    } else {
      this.lines.push('  if (flex) {');
      this.lines.push('    let count = 0;');
      for (const f of tagged) {
        this.lines.push(
          `    if ((${cond(f.tagged, m.valid)}) && !(${this.isDefaultExpr(m, f, `x.${f.prop}`)})) {`,
        );
        this.lines.push(`      const size = ${this.sizeValue(s, f, `x.${f.prop}`)};`);
        this.lines.push(`      n += sizeOfUvarint(${f.tag}) + sizeOfUvarint(size) + size;`);
        this.lines.push('      count++;');
        this.lines.push('    }');
      }
      this.lines.push('    n += sizeOfUvarint(count);');
      this.lines.push('  }');
    }
    this.lines.push('  return n;');
    this.lines.push('}');
    this.lines.push('');
  }

  private emitTypeAndDefaults(s: StructDef): void {
    const m = s.msg;
    this.lines.push(`export interface ${s.tsName} {`);
    for (const f of s.fields) {
      const range =
        f.versions.hi === Number.POSITIVE_INFINITY
          ? `${f.versions.lo}+`
          : `${f.versions.lo}-${f.versions.hi}`;
      const tag = isTaggedEverywhere(f) ? `, tagged ${f.tag}` : '';
      this.lines.push(`  /** ${f.name} (v${range}${tag}) */`);
      this.lines.push(`  ${f.prop}: ${this.tsType(m, f)};`);
    }
    this.lines.push('}');
    this.lines.push('');
    this.lines.push(`export function default${s.tsName}(): ${s.tsName} {`);
    this.lines.push('  return {');
    for (const f of s.fields) this.lines.push(`    ${f.prop}: ${this.defaultExpr(m, f)},`);
    this.lines.push('  };');
    this.lines.push('}');
    this.lines.push('');
    if (!s.isTop) {
      this.lines.push(`function isDefault${s.tsName}(x: ${s.tsName}): boolean {`);
      const parts = s.fields.map((f) => this.isDefaultExpr(m, f, `x.${f.prop}`));
      this.lines.push(`  return ${parts.length ? parts.join(' && ') : 'true'};`);
      this.lines.push('}');
      this.lines.push('');
    }
  }

  private sampleScalar(m: Message, f: Field, type: string, i: number): string {
    const def = this.defaultExpr(m, f);
    const pick = (a: string, b: string) => (a === def ? b : a);
    switch (type) {
      case 'bool':
        return def === 'true' ? 'false' : 'true';
      case 'int8':
        return pick(String(7 + i), String(8 + i));
      case 'int16':
        return pick(String(300 + i), String(301 + i));
      case 'uint16':
        return String(65000 + i);
      case 'int32':
        return pick(String(100000 + i), String(100001 + i));
      case 'uint32':
        return String(3000000000 + i);
      case 'int64':
        return pick(String(1000000000123 + i), String(1000000000124 + i));
      case 'float64':
        return String(1.5 + i);
      case 'string':
        return JSON.stringify(`${f.prop}-${i}`);
      case 'bytes':
        return `Buffer.from([1, 2, ${i}])`;
      case 'records':
        return `Buffer.from('records-${i}')`;
      case 'uuid':
        return `Buffer.from([${Array.from({ length: 16 }, (_, k) => k + i + 1).join(', ')}])`;
      default:
        throw new Error(`no sample for ${type}`);
    }
  }

  private sampleValue(m: Message, f: Field): string {
    const el = elementType(f.type);
    const nullCond = cond(f.nullable, intersect(f.versions, m.valid));
    const nullable = (expr: string) =>
      nullCond === 'false' ? expr : `nulls && (${nullCond}) ? null : ${expr}`;
    if (el !== null) {
      const items = [0, 1].map((i) =>
        PRIMITIVES.has(el)
          ? this.sampleScalar(m, f, el, i)
          : `sample${this.struct(m, el).tsName}(v, nulls)`,
      );
      return nullable(`[${items.join(', ')}]`);
    }
    if (PRIMITIVES.has(f.type)) {
      const value = this.sampleScalar(m, f, f.type, 0);
      return f.type === 'records'
        ? nullCond === 'false'
          ? value
          : `nulls ? null : ${value}`
        : nullable(value);
    }
    return `sample${this.struct(m, f.type).tsName}(v, nulls)`;
  }

  /** A test module: for each struct, a value with every field of version v set (non-default). */
  emitSamples(header: string, modulePath: string): string {
    const out: string[] = [header];
    const names = this.structs.map((s) => s.tsName);
    out.push(
      `import { ${names.map((n) => `default${n}, type ${n}`).join(', ')} } from '${modulePath}';`,
    );
    out.push(`void [${names.map((n) => `default${n}`).join(', ')}];`);
    out.push('');
    for (const s of this.structs) {
      const m = s.msg;
      const exp = s.isTop ? 'export ' : '';
      out.push(`${exp}function sample${s.tsName}(v: number, nulls: boolean): ${s.tsName} {`);
      out.push('  void nulls;');
      out.push('  return {');
      for (const f of s.fields) {
        const present = isTaggedEverywhere(f) ? f.tagged : f.versions;
        const c = cond(present, m.valid);
        const def = this.defaultExpr(m, f);
        const val = this.sampleValue(m, f);
        if (c === 'false') out.push(`    ${f.prop}: ${def},`);
        else if (c === 'true') out.push(`    ${f.prop}: ${val},`);
        else out.push(`    ${f.prop}: ${c} ? ${val} : ${def},`);
      }
      out.push('  };');
      out.push('}');
      out.push('');
    }
    return `${out.join('\n').trimEnd()}\n`;
  }

  emit(header: string): string {
    for (const s of this.structs) {
      this.emitTypeAndDefaults(s);
      this.emitRead(s);
      this.emitWrite(s);
      this.emitSize(s);
    }
    for (const m of this.messages) {
      const upper = constName(m.name);
      const flexLo = isEmpty(m.flexible) ? -1 : m.flexible.lo;
      this.lines.push(
        `/** Versions of ${m.name} this module encodes and decodes, and the first flexible one. */`,
      );
      this.lines.push(
        `export const ${upper}_VERSIONS = { min: ${m.valid.lo}, max: ${m.valid.hi}, flexibleMin: ${flexLo} } as const;`,
      );
      this.lines.push('');
    }
    const usesRecordsRef = this.messages.some(
      (m) =>
        m.kind === 'response' &&
        this.structs.some((s) => s.msg === m && s.fields.some((f) => f.type === 'records')),
    );
    const imports = [
      header,
      "import { Reader } from '../reader.js';",
      `import { ${usesRecordsRef ? 'type RecordsRef, ' : ''}sizeOfBytes, sizeOfCompactBytes, sizeOfCompactNullableBytes, sizeOfCompactNullableString, sizeOfCompactRecords, sizeOfCompactString, sizeOfNullableBytes, sizeOfNullableString, sizeOfRecords, sizeOfString, sizeOfUvarint, Writer } from '../writer.js';`,
      "import { readArray, sizeOfArrayLength, sumOf, UnsupportedVersionError, writeArrayLength } from '../codec-runtime.js';",
      '',
      '// Helpers referenced only in some modules.',
      'void [sizeOfBytes, sizeOfCompactBytes, sizeOfCompactNullableBytes, sizeOfCompactNullableString, sizeOfCompactRecords, sizeOfCompactString, sizeOfNullableBytes, sizeOfNullableString, sizeOfRecords, sizeOfString, sizeOfUvarint, readArray, sizeOfArrayLength, sumOf, UnsupportedVersionError, writeArrayLength, Reader, Writer];',
      '',
    ];
    return `${[...imports, ...this.lines].join('\n').trimEnd()}\n`;
  }
}

export function constName(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

export function versionCovered(m: Message, v: number): boolean {
  return contains(m.valid, v);
}
