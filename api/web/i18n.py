"""The workbench's words, in Chinese (the default) and English: one table, looked up by key.

A page's language comes from ``?lang=zh|en`` (remembered in a cookie) or the cookie alone. Task
kinds and screenings reuse :data:`pathway.teams.daily_tasks.WHAT_TO_DO` and ``SCREENING``; reasons carry
both languages in the assessment itself.
"""

from __future__ import annotations

from typing import Literal

from api.web.i18n_medication import MEDICATION_WORDS
from pathway.teams.daily_tasks import SCREENING, WHAT_TO_DO

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")
DEFAULT_LANG: Lang = "zh"
LANG_COOKIE = "pw_lang"

_WORDS: dict[str, tuple[str, str]] = {
    # Frame
    "app.title": ("三高共管 工作台", "Sangao workbench"),
    "nav.today": ("今日任务", "Today"),
    "nav.dashboard": ("团队看板", "Dashboard"),
    "nav.contact": ("失访管理", "No contact"),
    "nav.patients": ("患者", "Patients"),
    "nav.teams": ("选择团队", "Teams"),
    "nav.logout": ("退出", "Log out"),
    "nav.lang": ("English", "中文"),
    "nav.signed_in_as": ("当前密钥", "Signed in as"),
    "skip": ("跳到内容", "Skip to content"),
    # Login
    "login.title": ("登录工作台", "Sign in to the workbench"),
    "login.key": ("团队 API 密钥", "Team API key"),
    "login.key_hint": (
        "以 pw_ 开头；密钥只用于本次登录，不会保存在浏览器中。",
        "Starts with pw_; used to sign in only, never stored in the browser.",
    ),
    "login.submit": ("登录", "Sign in"),
    "login.bad_key": ("密钥无效或已停用。", "Unknown or revoked key."),
    "login.too_many": ("错误密钥过多，请稍后再试。", "Too many wrong keys from here: try again later."),
    "login.bad_role": (
        "此密钥不能使用工作台（仅团队、EHR 与管理员密钥）。",
        "This key cannot use the workbench (team, EHR and admin keys only).",
    ),
    "login.expired": ("登录表单已过期，请重试。", "The sign-in form expired; please try again."),
    "login.logged_out": ("已退出。", "Signed out."),
    # Teams
    "teams.title": ("选择团队", "Choose a team"),
    "teams.none": ("还没有团队。", "No teams yet."),
    # Today
    "today.title": ("今日任务", "Today's list"),
    "today.total": ("共 {n} 项", "{n} items"),
    "today.empty": ("今天没有待办任务。", "Nothing due today."),
    "today.filter": ("筛选", "Filter"),
    "today.role": ("岗位", "Role"),
    "today.member": ("负责人", "Assignee"),
    "today.date": ("日期", "Date"),
    "today.all": ("全部", "All"),
    "today.overdue": ("逾期 {n} 天", "{n} d overdue"),
    "today.due_today": ("今日到期", "Due today"),
    "today.due_at": ("{at} 到期", "Due {at}"),
    "today.patients": ("{n} 位患者", "{n} patients"),
    "today.tasks": ("任务", "Tasks"),
    "today.crisis_reading": ("危急读数 {bp} · {at}（{source}）", "Crisis reading {bp} · {at} ({source})"),
    "today.escalated": ("已升级", "Escalated"),
    "today.unassigned": ("未分配", "Unassigned"),
    "today.page": ("第 {page} / {pages} 页", "Page {page} of {pages}"),
    "today.prev": ("上一页", "Previous"),
    "today.next": ("下一页", "Next"),
    "today.csv": ("导出 CSV", "Export CSV"),
    "today.time_limit": ("时限", "Time limit"),
    "today.reason": ("原因", "Why"),
    "today.latest": ("最近", "Latest"),
    "priority.1": ("优先级 1 · 立即", "Priority 1 · now"),
    "priority.2": ("优先级 2 · 紧急", "Priority 2 · urgent"),
    "priority.3": ("优先级 3 · 近期", "Priority 3 · soon"),
    "priority.4": ("优先级 4 · 常规", "Priority 4 · routine"),
    "priority.5": ("优先级 5 · 计划", "Priority 5 · planned"),
    "priority.n": ("优先级 {n}", "Priority {n}"),
    # Actions
    "action.outcome": ("记录结果", "Record outcome"),
    "action.reassign": ("转派", "Reassign"),
    "action.snooze": ("暂缓", "Snooze"),
    "action.note": ("备注", "Note"),
    "action.choose": ("请选择结果", "Choose an outcome"),
    "action.member": ("转派给", "Give to"),
    "action.until": ("暂缓至", "Until"),
    "action.until_hint": ("最多 {days} 天", "at most {days} days"),
    "action.reason": ("原因", "Reason"),
    "action.save": ("保存", "Save"),
    "action.working": ("保存中…", "Saving…"),
    "outcome.done": ("已完成", "Done"),
    "outcome.unreachable": ("联系不上", "Unreachable"),
    "outcome.refused": ("患者拒绝", "Refused"),
    "outcome.moved": ("已迁出", "Moved away"),
    "outcome.deceased": ("已故", "Deceased"),
    "notice.outcome": ("已记录结果，任务已从列表移除。", "Outcome recorded; the task left the list."),
    "notice.reassign": ("已转派。", "Reassigned."),
    "notice.retry": (
        "未联系上：任务保留，稍后再次联系，并已上报团队长。",
        "Not reached: the task stays open, due again shortly, and the team lead was told.",
    ),
    "notice.snooze": ("已暂缓，任务到期前不再显示。", "Snoozed; the task is off the list until then."),
    "notice.logged_in": ("已登录。", "Signed in."),
    "error.task-closed": (
        "该任务已关闭（可能已被他人处理）。",
        "This task is already closed (someone handled it).",
    ),
    "error.snooze-too-long": (
        "暂缓时间超过规则包允许的上限。",
        "That snooze is longer than the pack allows.",
    ),
    "error.snooze-not-allowed": (
        "急诊、紧急任务不可暂缓。",
        "Emergency and urgent tasks cannot be snoozed.",
    ),
    "error.invalid-input": ("输入有误，请检查后重试。", "Invalid input; please check and retry."),
    "error.csrf": ("页面已过期，请刷新后重试。", "This page expired; reload and try again."),
    "error.unknown-task": ("找不到该任务。", "No such task."),
    "error.generic": ("操作失败。", "That did not work."),
    # Errors
    "error.login": ("登录已过期，请重新登录。", "Your session expired; please sign in again."),
    "error.title.401": ("需要登录", "Sign-in required"),
    "error.text.401": ("登录已过期，请重新登录。", "Your session expired; please sign in again."),
    "error.title.403": ("无权访问", "Not allowed"),
    "error.text.403": (
        "您的密钥无权查看此页面。团队只能查看本团队的患者与任务。",
        "Your key may not see this page. A team sees only its own patients and list.",
    ),
    "error.title.404": ("未找到", "Not found"),
    "error.text.404": ("没有这个页面或记录。", "There is no such page or record."),
    "error.title.422": ("输入有误", "Invalid request"),
    "error.text.422": ("请求中的参数无效。", "A parameter of the request is invalid."),
    "error.title.429": ("请求过多", "Too many requests"),
    "error.text.429": ("请稍后再试。", "Please retry shortly."),
    "error.title.503": ("暂时不可用", "Temporarily unavailable"),
    "error.text.503": ("服务暂时不可用，请稍后再试。", "The service is unavailable; retry shortly."),
    "error.back": ("返回", "Back"),
    # Patient
    "patient.title": ("患者", "Patient"),
    "patient.tier": ("分层", "Tier"),
    "patient.level": ("管理级别", "Level"),
    "patient.reasons": ("分层依据", "Why this tier"),
    "patient.rule": ("规则", "Rule"),
    "patient.source": ("依据", "Source"),
    "patient.pack": ("规则包", "Rule pack"),
    "patient.evaluated": ("评估时间", "Assessed"),
    "patient.no_reasons": ("无触发规则（蓝色：常规管理）。", "No rule fired (blue: routine care)."),
    "patient.pending": (
        "上次评估失败，等待重新评估。",
        "The last evaluation failed; a reassessment is pending.",
    ),
    "patient.none": ("尚无评估。", "No assessment yet."),
    "patient.follow_up": ("下次随访", "Next follow-up"),
    "patient.every_days": ("每 {n} 天", "every {n} days"),
    "patient.referral": ("转诊", "Referral"),
    "patient.no_referral": ("无进行中的转诊。", "No open referral."),
    "patient.tasks": ("待办任务", "Open tasks"),
    "patient.no_tasks": ("没有待办任务。", "No open tasks."),
    "patient.plan": ("{year} 年度照护计划", "Care plan {year}"),
    "patient.charts": ("趋势", "Trends"),
    "patient.months": ("近 {n} 个月", "last {n} months"),
    "patient.conditions": ("诊断", "Conditions"),
    "patient.age": ("{n} 岁", "{n} y"),
    "patient.born": ("出生", "Born"),
    "patient.team": ("团队", "Team"),
    "patient.back": ("返回今日任务", "Back to today's list"),
    "patient.last_contact": ("最后联系", "last contact"),
    "patient.no_contact": ("登记后无联系", "none since registration"),
    "referral.open": ("已开立", "Opened"),
    "referral.accepted": ("已接收", "Accepted"),
    "referral.completed": ("已完成", "Completed"),
    "referral.returned": ("已下转", "Returned"),
    "referral.urgency.emergency": ("急诊转诊", "Emergency referral"),
    "referral.urgency.urgent": ("紧急转诊", "Urgent referral"),
    "referral.urgency.routine": ("常规上转", "Routine referral"),
    "referral.to": ("接收机构", "Receiving"),
    "plan.done": ("已完成", "done"),
    "plan.planned": ("计划", "planned"),
    "plan.overdue": ("逾期", "overdue"),
    "plan.empty": ("本年度无计划项目。", "Nothing planned this year."),
    "plan.date": ("日期", "Date"),
    "plan.item": ("项目", "Item"),
    "plan.status": ("状态", "Status"),
    # Charts
    "chart.bp": ("血压 (mmHg)", "Blood pressure (mmHg)"),
    "chart.glucose": ("血糖 (mmol/L)", "Glucose (mmol/L)"),
    "chart.ldl": ("LDL-C (mmol/L)", "LDL-C (mmol/L)"),
    "chart.tiers": ("分层变化", "Tier history"),
    "chart.clinic": ("诊室", "Clinic"),
    "chart.home": ("家庭/穿戴", "Home/wearable"),
    "chart.lab": ("化验", "Lab"),
    "chart.sbp": ("收缩压", "Systolic"),
    "chart.dbp": ("舒张压", "Diastolic"),
    "chart.target": ("目标", "Target"),
    "chart.home_target": ("家庭目标", "Home target"),
    "chart.no_target": ("无适用目标", "no target applies"),
    "chart.hypo": ("低血糖", "Hypoglycaemia"),
    "chart.hyper": ("高血糖", "Hyperglycaemia"),
    "chart.hypo_line": ("低血糖", "Hypo"),
    "chart.hyper_line": ("高血糖", "Hyper"),
    "chart.fasting_line": ("空腹目标", "Fasting"),
    "chart.non_fasting_line": ("非空腹目标", "Non-fasting"),
    "chart.stratum": ("分层目标", "Stratum target"),
    "chart.empty": ("此期间无数据。", "No readings in this period."),
    "chart.points": ("{n} 个读数", "{n} readings"),
    "chart.from_rule": ("来自规则", "from rule"),
    # Dashboard
    "dash.title": ("团队看板", "Team dashboard"),
    "dash.as_of": ("截至 {at}", "As of {at}"),
    "dash.computing": (
        "正在计算团队指标，页面将自动刷新…",
        "Computing the team's indicators; this page refreshes by itself…",
    ),
    "dash.refreshing": (
        "数据更新中，稍后刷新可见最新结果。",
        "Refreshing; reload shortly for the latest figures.",
    ),
    "dash.managed": ("管理患者", "Managed patients"),
    "dash.trend": ("指标趋势（月末）", "Indicators by month end"),
    "dash.ldl_trend": ("LDL-C 达标率（按分层）", "LDL-C at target, by stratum"),
    "dash.tiers": ("分层分布", "Tier distribution"),
    "dash.overdue": ("逾期任务", "Overdue tasks"),
    "dash.referrals": ("进行中的转诊", "Active referrals"),
    "dash.encounters": ("本年随访次数", "Visits this year"),
    "dash.rate": ("比例", "Rate"),
    "dash.count": ("分子/分母", "Numerator / denominator"),
    "dash.none": ("无", "none"),
    "dash.retier": ("新版路径重新分层（{version}）", "Re-tier under pack {version}"),
    "dash.retier_done": ("已完成", "finished"),
    "dash.retier_running": ("进行中", "running"),
    "dash.retier_assessed": ("重新评估 {n} 人", "{n} reassessed"),
    "dash.retier_no_change": ("无分层变化", "no tier changed"),
    "ind.bp_control": ("血压控制率", "BP control"),
    "ind.glucose_control": ("血糖控制率", "Glucose control"),
    "ind.standard_management": ("规范管理率", "Standard management"),
    "ind.hearts_bp_control": ("HEARTS 血压控制", "HEARTS BP control"),
    "ind.regular_adherence": ("规律服药率", "Regular adherence"),
    "ind.statin_use_ascvd": ("他汀使用率（ASCVD）", "Statin use (ASCVD)"),
    "ind.statin_use_high_risk": ("他汀使用率（高危及以上）", "Statin use (high risk or above)"),
    "ind.antihypertensive_combination": ("降压药联合治疗率", "Antihypertensive combination"),
    "dash.medication": ("用药（§7）", "Medication (§7)"),
    # Words
    "tier.red": ("红", "Red"),
    "tier.yellow": ("黄", "Yellow"),
    "tier.blue": ("蓝", "Blue"),
    "patients.title": ("患者", "Patients"),
    "patients.total": ("共 {n} 人", "{n} patients"),
    "patients.found": ("找到 {n} 人", "{n} found"),
    "patients.search": ("搜索", "Search"),
    "patients.placeholder": ("姓名、编号或电话", "Name, ID or phone"),
    "patients.clear": ("清除", "Clear"),
    "patients.empty": ("团队暂无患者。", "The team has no patients yet."),
    "patients.none_found": ("没有找到与“{q}”相符的患者。", "No patient matches “{q}”."),
    "patients.no_phone": ("无电话", "no phone"),
    "patients.not_assessed": ("未评估", "not assessed"),
    "contact.title": ("失访与未随访", "Patients without contact"),
    "contact.total": ("共 {n} 人", "{n} patients"),
    "contact.empty": ("没有失访或 3 个月未随访的患者。", "No patient without contact for 3 months or more."),
    "contact.all": ("全部", "All"),
    "contact.flag": ("标记", "Flag"),
    "contact.days": ("{n} 天未联系", "{n} days without contact"),
    "contact.since": ("标记于", "flagged on"),
    "flag.missed_3m": ("3个月未随访", "No contact for 3 months"),
    "flag.lost_to_follow_up": ("失访", "Lost to follow-up"),
    "level.center": ("三高中心", "Centre"),
    "level.base": ("三高基地", "Base"),
    "level.home": ("三高之家", "Home"),
    "role.gp": ("家庭医生", "GP"),
    "role.health_manager": ("健康管理师", "Health manager"),
    "role.specialist": ("专科医生", "Specialist"),
    "role.team_lead": ("团队长", "Team lead"),
    "keyrole.admin": ("管理员", "admin"),
    "keyrole.ehr": ("EHR", "EHR"),
    "keyrole.team": ("团队", "team"),
    "condition.hypertension": ("高血压", "Hypertension"),
    "condition.diabetes": ("糖尿病", "Diabetes"),
    "condition.dyslipidemia": ("血脂异常", "Dyslipidaemia"),
    "condition.ckd": ("慢性肾病", "CKD"),
    "sex.male": ("男", "M"),
    "sex.female": ("女", "F"),
    "stratum.ultra_high": ("超高危", "ultra-high"),
    "stratum.very_high": ("极高危", "very high"),
    "stratum.high": ("高危", "high"),
    "stratum.moderate": ("中危", "moderate"),
    "stratum.low": ("低危", "low"),
    "latest.bp": ("血压", "BP"),
    "latest.home_bp": ("家庭血压均值", "Home BP mean"),
    "latest.glucose": ("血糖", "Glucose"),
    "latest.hba1c": ("HbA1c", "HbA1c"),
    "latest.ldl": ("LDL-C", "LDL-C"),
    "source.clinic": ("诊室", "clinic"),
    "source.home": ("家庭", "home"),
    "source.wearable": ("穿戴", "wearable"),
    "source.cgm": ("CGM", "CGM"),
    "source.lab": ("化验", "lab"),
    "kind.fpg": ("空腹", "fasting"),
    "kind.ppg2h": ("餐后2h", "2-h post-meal"),
    "kind.rpg": ("随机", "random"),
    "month": ("{m}月", "{mon}"),
    **MEDICATION_WORDS,
}

_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def pick_lang(query: str | None, cookie: str | None) -> Lang:
    for candidate in (query, cookie):
        if candidate == "zh":
            return "zh"
        if candidate == "en":
            return "en"
    return DEFAULT_LANG


class Translator:
    """``t(key, **values)`` in one language; unknown keys come back as the key (visible, never a crash)."""

    def __init__(self, lang: Lang) -> None:
        self.lang = lang
        self._index = LANGS.index(lang)

    def __call__(self, key: str, **values: object) -> str:
        words = _WORDS.get(key)
        if words is None:
            return key
        text = words[self._index]
        return text.format(**values) if values else text

    def has(self, key: str) -> bool:
        return key in _WORDS

    def word(self, prefix: str, value: str | None) -> str:
        """The word for ``prefix.value`` (a tier, role, outcome…), or the value itself."""
        if value is None:
            return ""
        key = f"{prefix}.{value}"
        return self(key) if key in _WORDS else value

    def task(self, kind: str, subject: str | None = None) -> str:
        zh, en = WHAT_TO_DO.get(kind, (kind, kind))
        text = zh if self.lang == "zh" else en
        if subject:
            check_zh, check_en = SCREENING.get(subject, (subject, subject))
            text = f"{text}：{check_zh}" if self.lang == "zh" else f"{text}: {check_en}"
        return text

    def month(self, month: int) -> str:
        return self("month", m=month, mon=_MONTHS_EN[month - 1])
