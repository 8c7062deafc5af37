//! One blueprint's entities, each in a numbered slot, with a column of values per field.
//!
//! A search tests a rule on a plain field against the field's column: one contiguous array of
//! small cells, strings interned per column, so a rule over 40,000 entities reads 40,000 cells
//! instead of chasing each entity's property map. Each cell is an owned copy of what
//! [`read`] gives for that entity and field, kept current on every insert, removal and
//! recompute, so the column and the entity never disagree.
//!
//! The columns are the blueprint's meta fields, properties, relations and computed properties,
//! plus any other key an entity holds, by their bare names (`language`, `identifier`;
//! `$identifier` reads the same column), so a plain field without a column is missing on every
//! entity. `properties.x` and paths through relations are read from the entities.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Number, Value};

use crate::model::{Blueprint, Indexed, Map, META_FIELDS};
use crate::query::{read, Items, V};

/// A row's number in its table.
pub(crate) type Slot = u32;

/// Where a plain field's values are.
pub(crate) enum Field<'t> {
    Column(&'t Column),
    /// No entity of the table has the field: every value is missing.
    Absent,
    /// Read from the entities (`properties.x`).
    Rows,
}

/// A blueprint's entities and their columns.
#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    rows: Vec<Option<Indexed>>,
    slots: HashMap<String, Slot>,
    free: Vec<Slot>,
    columns: HashMap<String, Column>,
}

impl Table {
    /// An empty table with a column for each field of `bp` (see [`fields`]).
    pub(crate) fn new(bp: Option<&Blueprint>) -> Table {
        let mut t = Table::default();
        t.set_fields(fields(bp));
        t
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn get(&self, identifier: &str) -> Option<&Indexed> {
        let slot = *self.slots.get(identifier)?;
        self.row(slot)
    }

    pub(crate) fn row(&self, slot: Slot) -> Option<&Indexed> {
        self.rows.get(slot as usize)?.as_ref()
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &Indexed> {
        self.rows.iter().flatten()
    }

    pub(crate) fn identifiers(&self) -> impl Iterator<Item = &String> {
        self.slots.keys()
    }

    /// Every occupied slot, in slot order.
    pub(crate) fn live(&self) -> Vec<Slot> {
        let all = 0..self.rows.len() as Slot;
        if self.free.is_empty() {
            return all.collect();
        }
        // Free slots hold no identifier.
        match self.columns.get("identifier") {
            Some(ids) => all.filter(|&s| ids.string_id(s).is_some()).collect(),
            None => all.filter(|&s| self.row(s).is_some()).collect(),
        }
    }

    /// Where a field's values are, for a plain field (not a path through relations).
    pub(crate) fn field(&self, field: &str) -> Field<'_> {
        let name = match field.strip_prefix('$') {
            Some(meta) if META_FIELDS.contains(&meta) => meta,
            Some(_) => return Field::Absent,
            None if field.starts_with("properties.") => return Field::Rows,
            None => field,
        };
        match self.columns.get(name) {
            Some(c) => Field::Column(c),
            None => Field::Absent,
        }
    }

    /// Puts `e` in the table, replacing the entity of the same identifier; gives that one back.
    pub(crate) fn insert(&mut self, e: Indexed) -> Option<Indexed> {
        let id = e.record.entity.identifier.clone();
        let (slot, old) = match self.slots.get(&id) {
            Some(&slot) => (slot, self.rows[slot as usize].replace(e)),
            None => {
                let slot = match self.free.pop() {
                    Some(slot) => {
                        self.rows[slot as usize] = Some(e);
                        slot
                    }
                    None => {
                        self.rows.push(Some(e));
                        (self.rows.len() - 1) as Slot
                    }
                };
                self.slots.insert(id, slot);
                (slot, None)
            }
        };
        self.refresh(slot);
        old
    }

    pub(crate) fn remove(&mut self, identifier: &str) -> Option<Indexed> {
        let slot = self.slots.remove(identifier)?;
        let old = self.rows[slot as usize].take();
        self.free.push(slot);
        for c in self.columns.values_mut() {
            c.set(slot, None);
        }
        old
    }

    /// Sets an entity's computed values and its cells with them.
    pub(crate) fn set_computed(&mut self, identifier: &str, computed: Map) {
        let Some(&slot) = self.slots.get(identifier) else {
            return;
        };
        if let Some(e) = self.rows[slot as usize].as_mut() {
            if e.computed == computed {
                return;
            }
            e.computed = computed;
        }
        self.refresh(slot);
    }

    /// Makes the columns those of `bp`, filled from the entities.
    pub(crate) fn reshape(&mut self, bp: Option<&Blueprint>) {
        self.set_fields(fields(bp));
    }

    fn set_fields(&mut self, mut names: Vec<String>) {
        for e in self.rows.iter().flatten() {
            let entity = &e.record.entity;
            names.extend(entity.properties.keys().cloned());
            names.extend(e.computed.keys().cloned());
            names.extend(entity.relations.keys().cloned());
        }
        names.sort();
        names.dedup();
        self.columns = names
            .into_iter()
            .map(|name| {
                let c = self.fill(&name);
                (name, c)
            })
            .collect();
    }

    fn refresh(&mut self, slot: Slot) {
        let Some(e) = self.rows[slot as usize].as_ref() else {
            return;
        };
        // A field the blueprint does not name (a property kept from an earlier schema, a stale
        // computed value) still gets a column, so a field without one is absent everywhere.
        let entity = &e.record.entity;
        let unseen: Vec<String> = entity
            .properties
            .keys()
            .chain(e.computed.keys())
            .chain(entity.relations.keys())
            .filter(|k| !self.columns.contains_key(k.as_str()))
            .cloned()
            .collect();
        for name in unseen {
            let c = self.fill(&name);
            self.columns.insert(name, c);
        }
        let Some(e) = self.rows[slot as usize].as_ref() else {
            return;
        };
        for (name, c) in self.columns.iter_mut() {
            c.set(slot, read(e, name));
        }
    }

    /// A column of `name` read from every row.
    fn fill(&self, name: &str) -> Column {
        let mut c = Column::default();
        for (slot, row) in self.rows.iter().enumerate() {
            c.set(slot as Slot, row.as_ref().and_then(|e| read(e, name)));
        }
        c
    }
}

/// The fields a blueprint's table keeps a column for: the meta fields, then the properties,
/// relations and computed properties, all by bare name.
fn fields(bp: Option<&Blueprint>) -> Vec<String> {
    let mut out: Vec<String> = META_FIELDS.iter().map(|f| f.to_string()).collect();
    if let Some(bp) = bp {
        out.extend(bp.schema.properties.keys().cloned());
        out.extend(bp.relations.keys().cloned());
        out.extend(bp.mirror_properties.keys().cloned());
        out.extend(bp.calculation_properties.keys().cloned());
        out.extend(bp.aggregation_properties.keys().cloned());
    }
    out.sort();
    out.dedup();
    out
}

/// How many cells of a column hold each kind of value.
#[derive(Debug, Clone, Default)]
struct Kinds {
    strings: usize,
    numbers: usize,
    /// Lists, objects and dates.
    others: usize,
}

impl Kinds {
    fn add(&mut self, cell: &Cell, n: isize) {
        let count = match cell {
            Cell::Str(_) => &mut self.strings,
            Cell::Num(_) => &mut self.numbers,
            Cell::Json(_) | Cell::Date(_) => &mut self.others,
            Cell::Missing | Cell::Null | Cell::Bool(_) => return,
        };
        *count = count.wrapping_add_signed(n);
    }
}

/// A JSON number as an `f64` when the conversion loses nothing: a float, or an integer of at
/// most 2^53 in magnitude. Two such numbers compare as `f64`s exactly as
/// `query::eval::number_cmp` compares them.
pub(crate) fn exact(n: &Number) -> Option<f64> {
    const LIMIT: u64 = 1 << 53;
    if n.is_f64() {
        n.as_f64()
    } else if let Some(i) = n.as_i64() {
        (i.unsigned_abs() <= LIMIT).then_some(i as f64)
    } else {
        n.as_u64().filter(|&u| u <= LIMIT).map(|u| u as f64)
    }
}

/// The string id of a cell that holds no string.
pub(crate) const NO_STRING: u32 = u32::MAX;

/// One field's value in one row: an owned copy of what [`read`] gives.
#[derive(Debug, Clone, Default)]
pub(crate) enum Cell {
    /// No such field on the entity (or an empty slot).
    #[default]
    Missing,
    Null,
    Bool(bool),
    Num(Number),
    /// An interned string: an index into the column's strings.
    Str(u32),
    Date(DateTime<Utc>),
    /// A list or an object.
    Json(Box<Value>),
}

/// One field of every row, strings interned.
#[derive(Debug, Clone, Default)]
pub(crate) struct Column {
    cells: Vec<Cell>,
    /// Each cell's string id, or [`NO_STRING`]: a string rule reads these 4 bytes per row
    /// instead of the whole cell.
    string_ids: Vec<u32>,
    /// Each cell's number as an `f64` when that is exact (see [`exact`]), NaN otherwise: a
    /// number rule or sort reads these 8 bytes per row.
    numbers: Vec<f64>,
    /// The slots holding each string id, ascending.
    postings: Vec<Vec<Slot>>,
    kinds: Kinds,
    /// Interned strings by id; a freed id holds an empty string until reused.
    strings: Vec<Box<str>>,
    /// How many cells hold each string.
    refs: Vec<u32>,
    ids: HashMap<Box<str>, u32>,
    free_ids: Vec<u32>,
}

impl Column {
    /// The cell's string id when it holds a string.
    pub(crate) fn string_id(&self, slot: Slot) -> Option<u32> {
        self.string_ids
            .get(slot as usize)
            .copied()
            .filter(|&id| id != NO_STRING)
    }

    pub(crate) fn string_ids_by_slot(&self) -> &[u32] {
        &self.string_ids
    }

    /// The cell's number as an exact `f64`, when it holds such a number.
    pub(crate) fn number(&self, slot: Slot) -> Option<f64> {
        self.numbers
            .get(slot as usize)
            .copied()
            .filter(|x| !x.is_nan())
    }

    pub(crate) fn numbers_by_slot(&self) -> &[f64] {
        &self.numbers
    }

    pub(crate) fn cell(&self, slot: Slot) -> &Cell {
        self.cells.get(slot as usize).unwrap_or(&Cell::Missing)
    }

    /// How many string ids there are (free ones included): the size of a per-string table.
    pub(crate) fn string_ids(&self) -> usize {
        self.strings.len()
    }

    pub(crate) fn string(&self, id: u32) -> &str {
        self.strings.get(id as usize).map_or("", |s| s)
    }

    /// The value as [`read`] gave it.
    pub(crate) fn get(&self, slot: Slot) -> Option<V<'_>> {
        self.value(self.cell(slot))
    }

    pub(crate) fn value<'a>(&'a self, cell: &'a Cell) -> Option<V<'a>> {
        Some(match cell {
            Cell::Missing => return None,
            Cell::Null => V::Null,
            Cell::Bool(b) => V::Bool(*b),
            Cell::Num(n) => V::Num(n),
            Cell::Str(id) => V::Str(self.string(*id)),
            Cell::Date(d) => V::Date(*d),
            Cell::Json(v) => V::of(v),
        })
    }

    fn set(&mut self, slot: Slot, v: Option<V<'_>>) {
        let cell = match v {
            None => Cell::Missing,
            Some(V::Null) => Cell::Null,
            Some(V::Bool(b)) => Cell::Bool(b),
            Some(V::Num(n)) => Cell::Num(n.clone()),
            Some(V::Str(s)) => {
                if let Some(Cell::Str(old)) = self.cells.get(slot as usize) {
                    if self.string(*old) == s {
                        return;
                    }
                }
                Cell::Str(self.intern(s))
            }
            Some(V::Date(d)) => Cell::Date(d),
            Some(v @ (V::Arr(Items::Json(_)) | V::Arr(Items::Strs(_)) | V::Obj(_))) => {
                Cell::Json(Box::new(v.to_value()))
            }
        };
        let i = slot as usize;
        if i >= self.cells.len() {
            self.cells.resize(i + 1, Cell::Missing);
            self.string_ids.resize(i + 1, NO_STRING);
            self.numbers.resize(i + 1, f64::NAN);
        }
        self.string_ids[i] = match cell {
            Cell::Str(id) => id,
            _ => NO_STRING,
        };
        self.numbers[i] = match &cell {
            Cell::Num(n) => exact(n).unwrap_or(f64::NAN),
            _ => f64::NAN,
        };
        if let Cell::Str(id) = cell {
            let p = &mut self.postings[id as usize];
            match p.last() {
                Some(&last) if last > slot => {
                    let at = p.partition_point(|&s| s < slot);
                    p.insert(at, slot);
                }
                _ => p.push(slot),
            }
        }
        self.kinds.add(&cell, 1);
        let old = std::mem::replace(&mut self.cells[i], cell);
        self.kinds.add(&old, -1);
        if let Cell::Str(id) = old {
            let p = &mut self.postings[id as usize];
            if let Ok(at) = p.binary_search(&slot) {
                p.remove(at);
            }
            self.release(id);
        }
    }

    /// The slots holding string `s`, ascending.
    pub(crate) fn posting(&self, s: &str) -> &[Slot] {
        match self.ids.get(s) {
            Some(&id) => &self.postings[id as usize],
            None => &[],
        }
    }

    /// Whether a cell may hold strings other than as plain strings (in a list, an object, a
    /// date): when not, the slots holding a string are exactly its posting.
    pub(crate) fn only_plain_strings(&self) -> bool {
        self.kinds.others == 0
    }

    /// Whether any cell holds a string / a number / a list, object or date.
    pub(crate) fn has_strings(&self) -> bool {
        self.kinds.strings > 0
    }

    pub(crate) fn has_numbers(&self) -> bool {
        self.kinds.numbers > 0
    }

    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            self.refs[id as usize] += 1;
            return id;
        }
        let text: Box<str> = s.into();
        let id = match self.free_ids.pop() {
            Some(id) => {
                self.strings[id as usize] = text.clone();
                self.refs[id as usize] = 1;
                id
            }
            None => {
                self.strings.push(text.clone());
                self.refs.push(1);
                self.postings.push(Vec::new());
                (self.strings.len() - 1) as u32
            }
        };
        self.ids.insert(text, id);
        id
    }

    fn release(&mut self, id: u32) {
        let i = id as usize;
        self.refs[i] -= 1;
        if self.refs[i] == 0 {
            let text = std::mem::take(&mut self.strings[i]);
            self.ids.remove(&text);
            self.free_ids.push(id);
        }
    }
}
