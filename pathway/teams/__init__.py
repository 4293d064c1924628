"""The GP team (家庭医生团队) and its screens: the daily list (今日任务), the patients without contact
(失访管理), the patient search (患者) and the indicators (绩效考核)."""
