"""Keyed tokens: what a province sends to the national duplicate check instead of identities.

A token is HMAC-SHA256 (RFC 2104) under the national key of a message naming one value, cut to
its first 128 bits (RFC 2104 section 5 allows truncation to half the output or more; at 10^9
distinct values the chance of any two colliding is about 10^-21). Equal values give equal tokens
in every province that holds the same key; without the key a token cannot be turned back into
the value, nor can a guessed value be tested against it. A token is still personal information:
it is sent only to the national platform.

Messages (UTF-8, fields joined by U+001F, each kind with its own first field so that tokens of
different kinds never meet):

- ``id``: ``id␟<18-character ID>``: the normalised ID number (blanks trimmed, ``x`` → ``X``).
  When the ID field holds no ID-shaped value, the tail of a ``G`` 学籍号 that is a valid ID
  (``G`` + the ID number) stands for it.
- ``id`` tokens of the *typo neighbours* (``near_tokens``): for an ID that fails its MOD 11-2
  check, every valid number one substitution or one adjacent swap away
  (``standards.iso7064.one_edit_valid_neighbours``: about 15 substitutions and 1-2 swaps pass). They
  share the ``id`` message space, so a neighbour meets the true ID where another province holds
  it, and two different typos of one ID meet on it.
- ``name``: ``name␟<name>␟<sex>␟<birth date>``: the name cleaned as linkage cleans it (NFKC,
  blanks removed, look-alikes of ``·`` made ``·``), sex 1/2, birth date YYYY-MM-DD.
- ``reading``: ``reading␟<pinyin>␟<sex>␟<birth date>``: every reading of the name from
  pypinyin's heteronym sets (tone-less syllables joined by blanks; ``readings``), one token per
  combination of readings, at most ``readings.MAX_READINGS`` per name.
- ``family``: ``family␟<reading>␟<guardian's reading>␟<sex>␟<birth date>␟<household province>``:
  the common reading of the name and of 监护人姓名 (cleaned as names are), and the province of
  户口所在地 (``households.household_provinces``). A record without an ID meets another on name
  and birth date by chance at national scale (common names share birthdays, and common guardian
  names too), so the national run asks such a pair to agree on the guardian and on the household
  registration as well, which a child keeps wherever it goes to school; homophones of either
  name (张伟/张玮) share the common reading.
- ``family_county``: the same with the household's 6-digit county code instead of its province
  (``households.household_counties``; no token where the county is unknown). Two children of a
  common name, birthday and guardian's name in one province's households are common at national
  scale; in one county they are not.

A missing sex is taken from the ID's 17th digit, else both sexes are tokenised; a missing or
unreal birth date is taken from the date inside the ID, else the record has no name tokens (a
name alone says nothing at national scale).

The key comes from a key file or the environment variable ``XUEJI_NATIONAL_KEY`` and is held
only inside a :class:`NationalKey`, which refuses to be printed or pickled; no output, log or
manifest carries it. The *key fingerprint* identifies a key without revealing it: the first 16
hex digits of SHA-256(SHA-256(key)), a hash of a hash, so that neither the key nor a value
derived from it by one hash (which some systems use as a key itself) is ever written.

Speed: HMAC is computed once per distinct message, in Python's hashlib with the two padded key
blocks hashed once per key and copied per message (RFC 2104's precomputation). Measured here on
1M short messages: ``hmac.digest`` 2.2 s, ``hmac.new`` 1.8 s, copied pads 0.7 s; a numpy
SHA-256 over whole columns would take about 6,000 array operations per message block, several
seconds per million. No installed package offers a vectorised HMAC or SHA-256 over an array
(pyarrow's hash kernels are not cryptographic; ``cryptography``'s HMAC takes one message per
call too, 1.6 s per million here even from a copied state). So the per-message loop stays,
over distinct messages only (about 6 tokens per record: ``bench/national.py`` prints the
figures).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xueji_quality import normalize
from xueji_quality.errors import InputError
from xueji_quality.national.households import household_counties, household_provinces
from xueji_quality.national.readings import (
    common_readings,
    expand,
    reading_combinations,
)
from xueji_quality.standards import dates, iso7064, resident_id
from xueji_quality.standards.fixed_width import fixed_width_bytes

KEY_ENV = "XUEJI_NATIONAL_KEY"
MIN_KEY_BYTES = 16
TOKEN_BYTES = 16
TOKEN_TYPE = pa.binary(TOKEN_BYTES)
TOKEN_LIST = pa.list_(TOKEN_TYPE)
# Written into every exchange file: a national run refuses files of another scheme.
SCHEME = "hmac-sha256-128/v2"
SEPARATOR = "\x1f"
ID_DOMAIN, NAME_DOMAIN, READING_DOMAIN = "id", "name", "reading"
FAMILY_DOMAIN, FAMILY_COUNTY_DOMAIN = "family", "family_county"
# id_state of a record: no usable ID, a valid ID, an ID-shaped number failing its check.
ID_NONE, ID_VALID, ID_INVALID = 0, 1, 2
TOKEN_COLUMNS = (
    "id_state",
    "id_token",
    "near_tokens",
    "name_tokens",
    "reading_tokens",
    "family_tokens",
    "family_county_tokens",
)
_BLOCK = 64  # SHA-256 block size (bytes)


@dataclass(frozen=True, eq=False)
class NationalKey:
    """The national key, ready to make tokens. Never printed, pickled or written."""

    fingerprint: str
    _inner: object = field(repr=False)  # SHA-256 state after (key XOR ipad)
    _outer: object = field(repr=False)  # SHA-256 state after (key XOR opad)

    def __repr__(self) -> str:
        return f"NationalKey(fingerprint={self.fingerprint!r})"

    def __reduce__(self):
        raise TypeError("国家查重密钥不能序列化：它不写入任何文件，也不传给其他进程")


def key_fingerprint(material: bytes) -> str:
    """First 16 hex digits of SHA-256(SHA-256(key))."""
    return hashlib.sha256(hashlib.sha256(material).digest()).hexdigest()[:16]


def key_from_bytes(material: bytes) -> NationalKey:
    """A key from its bytes (surrounding ASCII blanks and line ends are not part of it)."""
    material = bytes(material).strip()
    if len(material) < MIN_KEY_BYTES:
        raise ValueError(f"国家查重密钥太短：至少 {MIN_KEY_BYTES} 字节")
    block = hashlib.sha256(material).digest() if len(material) > _BLOCK else material
    block = block.ljust(_BLOCK, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
    return NationalKey(key_fingerprint(material), inner, outer)


def load_key(key_file: Path | str | None = None, environ: dict | None = None) -> NationalKey:
    """The national key from ``key_file``, else from the environment variable ``KEY_ENV``.

    Raises InputError (one Chinese line) when neither gives a usable key.
    """
    if key_file is not None:
        path = Path(key_file)
        if not path.is_file():
            raise InputError(str(path), "密钥文件不存在")
        material = path.read_bytes()
        source = str(path)
    else:
        environ = os.environ if environ is None else environ
        text = environ.get(KEY_ENV)
        if not text:
            raise InputError(
                f"环境变量 {KEY_ENV}",
                f"未给出国家查重密钥：用 --key-file 指定密钥文件，或设置环境变量 {KEY_ENV}",
            )
        material = text.encode("utf-8")
        source = f"环境变量 {KEY_ENV}"
    try:
        return key_from_bytes(material)
    except ValueError as error:
        raise InputError(source, str(error)) from None


# --- HMAC over a column ------------------------------------------------------------------------


def hmac_tokens(key: NationalKey, messages: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Token (fixed_size_binary 16) of each message (string or binary); null stays null.

    Each distinct message is hashed once.
    """
    if isinstance(messages, pa.ChunkedArray):
        messages = messages.combine_chunks()
    if len(messages) == 0:
        return pa.array([], TOKEN_TYPE)
    if not pa.types.is_binary(messages.type):
        messages = messages.cast(pa.binary())
    encoded = pc.dictionary_encode(messages)
    distinct = encoded.dictionary.to_pylist()
    inner, outer = key._inner.copy, key._outer.copy

    def digest(message: bytes) -> bytes:
        first = inner()
        first.update(message)
        second = outer()
        second.update(first.digest())
        return second.digest()

    joined = b"".join([digest(m) for m in distinct])
    cut = np.frombuffer(joined, dtype=np.uint8).reshape(-1, 32)[:, :TOKEN_BYTES].tobytes()
    table = pa.Array.from_buffers(TOKEN_TYPE, len(distinct), [None, pa.py_buffer(cut)])
    return table.take(encoded.indices)


def hmac_one(key: NationalKey, message: str) -> bytes:
    """The token of one message (tests and documentation)."""
    return hmac_tokens(key, pa.array([message]))[0].as_py()


# --- record fields ----------------------------------------------------------------------------


def _text(frame: pd.DataFrame, column: str) -> pa.Array:
    """A roster column as an Arrow string array (nulls if absent), blanks trimmed, blank = null."""
    if column not in frame.columns:
        return pa.nulls(len(frame), pa.string())
    values = frame[column]
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        array = values.array.__arrow_array__()
    else:
        array = pa.array(values.astype("string").to_numpy(dtype=object, na_value=None), pa.string())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    array = pc.utf8_trim_whitespace(array.cast(pa.string()))
    return pc.if_else(pc.equal(array, ""), pa.scalar(None, pa.string()), array)


def _id_text(digits: np.ndarray) -> np.ndarray:
    """(n, 18) ASCII bytes of digit values (X = 10)."""
    chars = digits.astype(np.uint8) + np.uint8(48)
    chars[digits == 10] = ord("X")
    return chars


def _fixed_messages(domain: str, chars: np.ndarray) -> pa.Array:
    """``domain␟`` + each row of a fixed-width byte matrix, as binary messages."""
    prefix = np.frombuffer((domain + SEPARATOR).encode(), dtype=np.uint8)
    rows = np.empty((len(chars), len(prefix) + chars.shape[1]), dtype=np.uint8)
    rows[:, : len(prefix)] = prefix
    rows[:, len(prefix) :] = chars
    fixed = pa.Array.from_buffers(
        pa.binary(rows.shape[1]), len(rows), [None, pa.py_buffer(rows.tobytes())]
    )
    return fixed.cast(pa.binary())


@dataclass
class Identities:
    """The usable ID of each record: digit matrix, state, and which rows hold one."""

    digits: np.ndarray  # (n, 18) digit values (X = 10); zeros where state is ID_NONE
    state: np.ndarray  # int8 ID_NONE / ID_VALID / ID_INVALID


def usable_ids(ids: pa.Array, student_no: pa.Array) -> Identities:
    """The ID field where it is ID-shaped, else a ``G`` 学籍号's tail that is a valid ID."""
    digits, shape = resident_id.digit_matrix(pc.utf8_upper(ids))
    valid = shape & iso7064.check_ok_column(digits)
    student_no = pc.utf8_upper(student_no)
    tail_digits, tail_shape = resident_id.digit_matrix(pc.utf8_slice_codeunits(student_no, 1))
    is_g = pc.fill_null(
        pc.and_(pc.starts_with(student_no, "G"), pc.equal(pc.utf8_length(student_no), 19)), False
    ).to_numpy(zero_copy_only=False)
    tail_valid = is_g & tail_shape
    tail_valid &= iso7064.check_ok_column(tail_digits)
    use_tail = ~shape & tail_valid
    digits[use_tail] = tail_digits[use_tail]
    state = np.where(valid | use_tail, ID_VALID, np.where(shape, ID_INVALID, ID_NONE))
    return Identities(digits, state.astype(np.int8))


def typo_neighbours(digits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Valid numbers one substitution or adjacent swap away from each row of ``digits`` (IDs
    failing their check): (row index, (m, 18) digit values), rows ascending."""
    if len(digits) == 0:
        return np.zeros(0, np.int64), np.zeros((0, 18), np.uint8)
    rows, found = iso7064.one_edit_valid_neighbours(digits)
    order = np.argsort(rows, kind="stable")
    return rows[order], found[order]


def clean_names(names: pa.Array) -> pa.Array:
    """NFKC, blanks removed, look-alikes of the middle dot made ``·`` (as linkage cleans)."""
    cleaned = pc.utf8_normalize(names, "NFKC")
    cleaned = pc.replace_substring_regex(cleaned, normalize.BLANK_CHARS, "")
    cleaned = pc.replace_substring_regex(cleaned, normalize.DOT_LOOKALIKES, normalize.MIDDLE_DOT)
    return pc.if_else(pc.equal(cleaned, ""), pa.scalar(None, pa.string()), cleaned)


def birth_texts(birth: pa.Array, ids: Identities) -> pa.Array:
    """出生日期 as YYYY-MM-DD where it is a real date, else the real date inside the ID, else
    null."""
    mask, raw = fixed_width_bytes(birth, 10)
    number = np.zeros(len(raw), dtype=np.int64)
    shaped = mask & (raw[:, 4] == ord("-")) & (raw[:, 7] == ord("-"))
    for k in (0, 1, 2, 3, 5, 6, 8, 9):
        is_digit = (raw[:, k] >= 48) & (raw[:, k] <= 57)
        shaped &= is_digit
        number = number * 10 + (raw[:, k].astype(np.int64) - 48)
    given = shaped & dates.real_numbers(np.where(shaped, number, 0))
    inside = np.zeros(len(raw), dtype=np.int64)
    for k in range(6, 14):
        inside = inside * 10 + ids.digits[:, k].astype(np.int64)
    from_id = ~given & (ids.state != ID_NONE) & dates.real_numbers(inside)
    chosen = np.where(given, number, np.where(from_id, inside, 0))
    chars = np.full((len(chosen), 10), ord("-"), dtype=np.uint8)
    for k, power in zip((0, 1, 2, 3, 5, 6, 8, 9), range(7, -1, -1), strict=True):
        chars[:, k] = chosen // 10**power % 10 + 48
    text = pa.Array.from_buffers(pa.binary(10), len(chosen), [None, pa.py_buffer(chars.tobytes())])
    text = text.cast(pa.binary()).cast(pa.string())
    return pc.if_else(pa.array(chosen > 0), text, pa.scalar(None, pa.string()))


def sex_options(sex: pa.Array, ids: Identities) -> tuple[np.ndarray, pa.Array]:
    """(record index, sex 1/2) rows: the field, else the ID's 17th digit, else both sexes."""
    words = pa.array(list(_SEX_CODES), pa.string())
    at = pc.fill_null(pc.index_in(sex, value_set=words), -1).to_numpy(zero_copy_only=False)
    code = np.append(np.array(list(_SEX_CODES.values()), dtype=np.int64), 0)[at]
    from_id = np.where(ids.digits[:, 16] % 2 == 1, 1, 2)
    code = np.where((code == 0) & (ids.state != ID_NONE), from_id, code)
    count = np.where(code == 0, 2, 1)
    record, within = expand(count)
    chosen = np.where(code[record] == 0, within + 1, code[record])
    return record, pa.array(np.where(chosen == 1, "1", "2"), pa.string())


_SEX_CODES = {"1": 1, "2": 2, "男": 1, "女": 2, "男性": 1, "女性": 2}


def _id_address(ids: Identities) -> np.ndarray:
    """The 6-digit address code of each usable ID as an integer, -1 without one."""
    address = np.zeros(len(ids.state), dtype=np.int64)
    for k in range(6):
        address = address * 10 + ids.digits[:, k].astype(np.int64)
    return np.where(ids.state != ID_NONE, address, -1)


# --- the tokens of a roster -------------------------------------------------------------------


def _lists(n: int, parent: np.ndarray, values: pa.Array) -> pa.Array:
    """A list per record (``parent`` ascending) of ``values``."""
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.bincount(parent, minlength=n), out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), values, type=TOKEN_LIST)


def _joined_messages(domain: str, *columns: pa.Array) -> pa.Array:
    prefix = pa.array([domain] * len(columns[0]), pa.string())
    return pc.binary_join_element_wise(prefix, *columns, SEPARATOR)


def record_tokens(frame: pd.DataFrame, key: NationalKey) -> pa.Table:
    """The token columns (``TOKEN_COLUMNS``) of each record of a canonical roster frame.

    Reads ``id_number``, ``student_no``, ``name``, ``sex``, ``birth_date`` (absent columns are
    empty). ``id_state``: ID_NONE / ID_VALID / ID_INVALID; ``id_token``: the ID's token (null
    without a usable ID); ``near_tokens``: tokens of the valid typo neighbours of an ID failing
    its check; ``name_tokens``, ``reading_tokens`` and ``family_tokens``: one per sex option
    (and reading). Also reads ``guardian_name`` and ``household_region``.
    """
    n = len(frame)
    ids = usable_ids(_text(frame, "id_number"), _text(frame, "student_no"))
    has_id = ids.state != ID_NONE
    id_rows = np.flatnonzero(has_id)
    id_token = pa.nulls(n, TOKEN_TYPE)
    if len(id_rows):
        made = hmac_tokens(key, _fixed_messages(ID_DOMAIN, _id_text(ids.digits[id_rows])))
        slots = np.full(n, -1, dtype=np.int64)
        slots[id_rows] = np.arange(len(id_rows))
        id_token = made.take(pa.array(slots, mask=slots < 0))

    failing = np.flatnonzero(ids.state == ID_INVALID)
    row, near = typo_neighbours(ids.digits[failing])
    near_tokens = _lists(
        n, failing[row], hmac_tokens(key, _fixed_messages(ID_DOMAIN, _id_text(near)))
    )

    names = clean_names(_text(frame, "name"))
    birth = birth_texts(_text(frame, "birth_date"), ids)
    sex_record, sex = sex_options(_text(frame, "sex"), ids)
    usable = pc.and_(
        pc.is_valid(names.take(pa.array(sex_record))), pc.is_valid(birth.take(pa.array(sex_record)))
    ).to_numpy(zero_copy_only=False)
    sex_record, sex = sex_record[usable], sex.filter(pa.array(usable))
    record_names = names.take(pa.array(sex_record))
    record_birth = birth.take(pa.array(sex_record))
    name_tokens = _lists(
        n,
        sex_record,
        hmac_tokens(key, _joined_messages(NAME_DOMAIN, record_names, sex, record_birth)),
    )

    # Readings of the distinct names, then one row per (record, sex, reading).
    encoded = pc.dictionary_encode(record_names)
    name_code = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    combo_name, combo_text = reading_combinations(encoded.dictionary)
    per_name = np.bincount(combo_name, minlength=len(encoded.dictionary))
    first = np.cumsum(per_name) - per_name
    option, within = expand(per_name[name_code])
    combo = first[name_code[option]] + within
    reading_tokens = _lists(
        n,
        sex_record[option],
        hmac_tokens(
            key,
            _joined_messages(
                READING_DOMAIN,
                combo_text.take(pa.array(combo)),
                sex.take(pa.array(option)),
                record_birth.take(pa.array(option)),
            ),
        ),
    )
    # Common readings of the name and of the guardian, one row per (record, sex).
    # Common readings of the name and of the guardian, one row per (record, sex), with the
    # household's province (family) and county (family_county, where it is known).
    guardians = clean_names(_text(frame, "guardian_name"))
    household_text = _text(frame, "household_region")
    address = _id_address(ids)
    guardian_code, guardian_readings = common_readings(guardians)
    name_readings = combo_text.take(pa.array(first))
    record_guardian = guardian_code[sex_record]
    has_guardian = record_guardian >= 0
    family_record = sex_record[has_guardian]
    family_parts = (
        name_readings.take(pa.array(name_code[has_guardian])),
        guardian_readings.take(pa.array(record_guardian[has_guardian])),
        sex.filter(pa.array(has_guardian)),
        record_birth.filter(pa.array(has_guardian)),
    )
    province = household_provinces(household_text, address).take(pa.array(family_record))
    family_tokens = _lists(
        n,
        family_record,
        hmac_tokens(key, _joined_messages(FAMILY_DOMAIN, *family_parts, province)),
    )
    county = household_counties(household_text, address).take(pa.array(family_record))
    known = pc.not_equal(county, "").to_numpy(zero_copy_only=False)
    family_county_tokens = _lists(
        n,
        family_record[known],
        hmac_tokens(
            key,
            _joined_messages(
                FAMILY_COUNTY_DOMAIN,
                *(part.filter(pa.array(known)) for part in family_parts),
                county.filter(pa.array(known)),
            ),
        ),
    )
    return pa.table(
        {
            "id_state": pa.array(ids.state, pa.int8()),
            "id_token": id_token,
            "near_tokens": near_tokens,
            "name_tokens": name_tokens,
            "reading_tokens": reading_tokens,
            "family_tokens": family_tokens,
            "family_county_tokens": family_county_tokens,
        }
    )
